"""Site secrets in Secrets Manager (the emulator's, over HTTP) and their rotation, end to
end: registration keeps no secret in the table; `python -m cli.sites rotate` makes a new
key while the old one still verifies, on the cloud and on the bridge; `finish` drops the
old key, after which its messages are refused; both steps are audited with the actor."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import boto3

from bridge.config import parse_config
from bridge.runtime import Bridge
from cli import sites as sites_cli
from core.domain.events import Subject
from core.integrations.queues import uplink_url
from core.protocol import messages
from core.services import control
from core.services.ingest import Ingest
from core.store import events as events_store
from core.store.models import SiteItem
from testkit.builders import Metered

NOW = datetime(2026, 11, 28, 4, tzinfo=UTC)


def heartbeat(site_id: str, key: str, n: int) -> str:
    return json.dumps(messages.sign(messages.envelope("heartbeat", site_id, f"hb-{n}", NOW), key))


def command(site_id: str, key: str, n: int) -> str:
    """An expired command: a bridge that verifies it records it as expired ("expired"),
    one that does not refuses it ("refused"); no meter is touched either way."""
    return json.dumps(messages.sign(messages.envelope(
        "command", site_id, f"c-{n}", NOW, command_id=f"c-{n}", meter_id="m-none", op="TRIP", args={},
        issued_at="2026-11-28T00:00:00+00:00", expires_at="2026-11-28T00:01:00+00:00"), key))


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = sites_cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def bridge_with(w: Metered, tmp_path, secret: str, previous: str | None = None) -> Bridge:
    doc = {"site_id": w.site.site_id, "secret": secret, "state_dir": str(tmp_path / "bridge"),
           "cloud": {"region": os.environ["AWS_REGION"], "uplink_queue_url": uplink_url(),
                     "down_queue_url": w.site.down_queue, "endpoint_url": os.environ["AWS_ENDPOINT_URL"]},
           "buses": [{"name": "bus1", "type": "tcp", "host": "127.0.0.1", "port": 1502,
                      "meters": [{"meter_id": "m-1", "address": 1, "model": "acrel-ddsy1352"}]}]}
    if previous:
        doc["previous_secret"] = previous
    return Bridge(parse_config(doc))


def test_registration_keeps_the_key_in_secrets_manager_not_in_the_table(aws):
    w = Metered()
    raw = boto3.client("dynamodb").get_item(TableName=SiteItem.Meta.table_name,
                                            Key={"site_id": {"S": w.site.site_id}}, ConsistentRead=True)["Item"]
    assert "secret" not in raw and w.site.secret not in json.dumps(raw)
    stored = boto3.client("secretsmanager").get_secret_value(SecretId=f"feikong/dev/site/{w.site.site_id}")
    assert json.loads(stored["SecretString"]) == {"current": w.site.secret}
    assert len(w.site.secret) >= 40


def test_rotate_accepts_both_keys_until_finish_then_refuses_the_old_one(aws, capsys, tmp_path):
    w = Metered()
    site_id, old = w.site.site_id, w.site.secret
    ingest = Ingest(clock=lambda: NOW)
    assert ingest.handle(heartbeat(site_id, old, 1)) == {"heartbeat": "recorded"}

    code, out = run_cli(capsys, "rotate", site_id, "--actor", "ops@feikong")
    assert code == 0
    lines = dict(line.split(": ", 1) for line in out.splitlines() if line.startswith(("secret:", "previous_secret:")))
    new, previous = json.loads(lines["secret"]), json.loads(lines["previous_secret"])
    assert previous == old and new != old and len(new) >= 40

    # during the rotation the cloud takes messages signed with either key, and signs with the new one
    assert ingest.handle(heartbeat(site_id, old, 2)) == {"heartbeat": "recorded"}
    assert ingest.handle(heartbeat(site_id, new, 3)) == {"heartbeat": "recorded"}
    assert control.site(site_id).secret == new
    # a bridge configured with the new key and the previous one accepts commands signed with either
    bridge = bridge_with(w, tmp_path, new, old)
    assert bridge.accept(command(site_id, old, 1), None) == "expired"
    assert bridge.accept(command(site_id, new, 2), None) == "expired"
    assert bridge.accept(command(site_id, "x" * 43, 3), None) == "refused"
    # a second rotation would lose the key a bridge may still hold
    code, out = run_cli(capsys, "rotate", site_id, "--actor", "ops@feikong")
    assert code == 2 and "尚未结束" in out

    code, out = run_cli(capsys, "finish", site_id, "--actor", "ops@feikong")
    assert code == 0
    assert ingest.handle(heartbeat(site_id, old, 4)) == {"refused": "signature"}
    assert ingest.handle(heartbeat(site_id, new, 5)) == {"heartbeat": "recorded"}
    bridge = bridge_with(w, tmp_path, new)  # previous_secret removed from the config
    assert bridge.accept(command(site_id, old, 4), None) == "refused"
    assert bridge.accept(command(site_id, new, 5), None) == "expired"

    steps = [(e.type, e.data.get("step"), e.data.get("actor")) for e in events_store.events_of(Subject.site(site_id))
             if e.type == "site_secret"]
    assert sorted(steps) == [("site_secret", "finish", "ops@feikong"), ("site_secret", "rotate", "ops@feikong")]
    code, out = run_cli(capsys, "status", site_id)
    assert code == 0 and json.loads(out)["rotating"] is False and new not in out


def test_finish_without_a_rotation_and_unknown_sites_are_refused(aws, capsys):
    w = Metered()
    code, out = run_cli(capsys, "finish", w.site.site_id, "--actor", "ops")
    assert code == 2 and "没有进行中的密钥轮换" in out
    code, out = run_cli(capsys, "rotate", "no-such-site", "--actor", "ops")
    assert code == 2 and "站点不存在" in out


def test_secret_reads_are_cached_for_their_max_age_and_forced_reads_go_to_the_store(aws, setenv):
    """core/integrations/secrets.py against the emulator: a value read once is served from
    memory (a change in Secrets Manager is not seen) until read with force; with a max age
    of 0 every read asks; a missing secret or a wrong shape names the secret."""
    import uuid

    import pytest

    from core.integrations import secrets

    sid = f"feikong/test/cache-{uuid.uuid4().hex[:8]}"
    secrets.put(sid, {"current": "k1"})
    assert secrets.get(sid, json_keys=("current",)) == {"current": "k1"}
    boto3.client("secretsmanager").put_secret_value(SecretId=sid, SecretString='{"current": "k2"}')
    assert secrets.get(sid, json_keys=("current",))["current"] == "k1"  # cached
    assert secrets.get(sid, json_keys=("current",), force=True)["current"] == "k2"
    setenv("FEIKONG_SECRETS_MAX_AGE", "0")
    boto3.client("secretsmanager").put_secret_value(SecretId=sid, SecretString='{"current": "k3"}')
    assert secrets.get(sid, json_keys=("current",))["current"] == "k3"
    with pytest.raises(secrets.SecretMissing, match=f"secret {sid} must be a JSON object with current, previous"):
        secrets.get(sid, json_keys=("current", "previous"))
    with pytest.raises(secrets.SecretMissing, match="secret feikong/test/none-such cannot be read"):
        secrets.get("feikong/test/none-such")
