"""The session rules (core/domain/sessions.py), pure. Expected values are worked by hand."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from core.domain.sessions import (
    SPENT_KEPT,
    Refresh,
    access_expiry,
    judge_refresh,
    open_session,
    parse_refresh_token,
    refresh_token,
    rotated,
)
from core.store.schema import time_to_live

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
SECRET = "A" * 43


def test_a_new_session_ends_30_days_after_login():
    s = open_session("oUser1", "a" * 32, "h0", T0)
    assert s.expires_at == datetime(2026, 3, 31, 8, 0, tzinfo=UTC)
    assert s.purge_at == datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
    assert access_expiry(s, T0) == datetime(2026, 3, 1, 8, 15, tzinfo=UTC)


def test_rotation_spends_the_current_hash_and_slides_the_end_up_to_90_days():
    s = open_session("oUser1", "a" * 32, "h0", T0)
    s1 = rotated(s, "h1", T0 + timedelta(days=10))
    assert (s1.refresh_hash, s1.spent, s1.generation) == ("h1", ("h0",), 1)
    assert s1.expires_at == datetime(2026, 4, 10, 8, 0, tzinfo=UTC)
    s2 = rotated(s1, "h2", T0 + timedelta(days=80))
    assert s2.expires_at == datetime(2026, 5, 30, 8, 0, tzinfo=UTC)  # login + 90 days, not day 110


def test_only_the_last_spent_hashes_are_kept():
    s = open_session("oUser1", "a" * 32, "h0", T0)
    for n in range(1, 26):
        s = rotated(s, f"h{n}", T0)
    assert len(s.spent) == SPENT_KEPT == 20
    assert s.spent[0] == "h5" and s.spent[-1] == "h24" and s.refresh_hash == "h25"


def test_verdicts():
    s = rotated(open_session("oUser1", "a" * 32, "h0", T0), "h1", T0)
    assert judge_refresh(s, "h1", T0) is Refresh.ROTATE
    assert judge_refresh(s, "h0", T0) is Refresh.REUSED
    assert judge_refresh(s, "hX", T0) is Refresh.UNKNOWN
    assert judge_refresh(s, "h1", T0 + timedelta(days=30)) is Refresh.EXPIRED
    assert judge_refresh(None, "h1", T0) is Refresh.UNKNOWN
    from dataclasses import replace

    revoked = replace(s, revoked_at=T0)
    assert judge_refresh(revoked, "h1", T0) is Refresh.REVOKED
    assert judge_refresh(revoked, "h0", T0) is Refresh.REVOKED
    assert judge_refresh(revoked, "hX", T0) is Refresh.UNKNOWN


def test_refresh_token_shape():
    token = refresh_token("oUser.1-x", "0123456789abcdef0123456789abcdef", SECRET)
    assert token == f"b1VzZXIuMS14.0123456789abcdef0123456789abcdef.{SECRET}"  # base64url("oUser.1-x")
    assert parse_refresh_token(token) == ("oUser.1-x", "0123456789abcdef0123456789abcdef")
    assert hashlib.sha256(token.encode()).hexdigest() != token


@given(st.text(max_size=300))
def test_parse_never_raises_and_accepts_only_canonical_tokens(text):
    parsed = parse_refresh_token(text)
    if parsed is not None:
        openid, sid = parsed
        assert refresh_token(openid, sid, text.rsplit(".", 1)[1]) == text


def test_malformed_refresh_tokens():
    sid = "0abc" * 8
    for bad in (None, 42, "", "a.b", f"b1VzZXIx.{sid}.{SECRET}.x", f"b1VzZXIx.{sid.upper()}.{SECRET}",
                f"b1VzZXIx.{sid}.{SECRET[:-1]}", f"IyM.{sid}.{SECRET}",  # base64url("##"): not an id
                f"b1VzZXIx=.{sid}.{SECRET}"):
        assert parse_refresh_token(bad) is None, bad


def test_the_sessions_table_expires_items_by_ttl():
    assert time_to_live()["tenant_sessions"] == "purge_at"
