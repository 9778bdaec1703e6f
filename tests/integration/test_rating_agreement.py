"""The tariff preview (电价试算) and production ingest agree on the same readings: the
same verdicts, the same charges to the fen, the same anomalies and proposals."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from core.domain.events import Subject
from core.domain.rating import MeterReading
from core.services import tariffs
from core.services.ingest import Ingest
from core.store import events as estore
from core.store import meters as meters_store
from testkit.builders import Clock, Metered
from tests.unit.test_tariff import TOU

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Shanghai
RECEIVED = T0 + timedelta(hours=16)  # when production judges the readings (the cloud's clock)


def row(seq, hours, total, received=None, **regs):
    out = {"seq": seq, "read_at": (T0 + timedelta(hours=hours)).isoformat(), "total": total}
    if regs:
        out["registers"] = regs
    if received is not None:
        out["received_at"] = received.isoformat()
    return out


SERIES = [
    row(1, 0, "100.00", peak="60.00", flat="40.00"),  # baseline
    row(2, 1, "103.00", peak="62.00", flat="41.00"),  # priced by register
    row(3, 2, "106.00", peak="66.00", flat="41.50"),  # registers (+4.5) disagree with the total (+3)
    row(4, 3, "107.00", peak="65.00", flat="42.00"),  # a register goes backwards
    row(5, 4, "108.00", peak="65.50", flat="42.50"),  # billed from the new baseline
    row(6, 12, "110.00", peak="66.50", flat="43.50"),  # 8 h silence: a gap with a proposal
    {**row(7, 0, "111.00"), "read_at": "2099-01-01T00:00:00+00:00", "received_at": RECEIVED.isoformat()},
    row(8, 13, "112.00", peak="67.50", flat="44.50"),  # billed from seq 6
    row(8, 13, "112.00", peak="67.50", flat="44.50"),  # a redelivery
]


def test_preview_and_production_agree_on_the_same_readings():
    w = Metered(plan=TOU)
    ingest = Ingest(clock=Clock(RECEIVED))
    acct = w.account(opening=100_000)
    meter = w.meter(acct, rated_kw="20")
    produced = []
    for r in SERIES:
        reading = MeterReading(meter, r["seq"], datetime.fromisoformat(r["read_at"]), Decimal(r["total"]),
                               {k: Decimal(v) for k, v in (r.get("registers") or {}).items()})
        produced.append(ingest.reading(w.site.site_id, reading))
    # the preview judges a reading at its received_at (default: its read time)
    preview = tariffs.preview(TOU, SERIES, rated_kw="20")
    assert produced == preview["outcomes"] == [
        "baseline", "billed", "billed", "register_backwards", "billed", "gap", "read_time_future", "billed",
        "duplicate"]
    from core.services.ledger import LedgerService

    billed = {e.entry_id: -e.amount for e in LedgerService().entries(acct, newest_first=False)[0]
              if e.kind == "energy"}
    assert billed == {f"use:{meter}:{c['seq']}": c["fen"] for c in preview["charges"] if c["fen"]}
    assert all(c["fen"] >= 0 for c in preview["charges"])  # never a negative charge
    events = {e.data["seq"]: e for e in estore.events_of(Subject.meter(meter)) if e.type == "anomaly"}
    assert {a["seq"]: a["kind"] for a in preview["anomalies"]} == {s: e.data["kind"] for s, e in events.items()}
    gap = next(a for a in preview["anomalies"] if a["kind"] == "gap")
    assert gap["proposed_fen"] == events[6].data["proposed_fen"]
    carry = meters_store.load_meter(meter).baseline.carry
    assert Decimal(preview["remainder_fen"]) == carry.remainder_fen
    # hand-worked, Tuesday (workday: flat 06-08 and 12-18, peak 08-12 and 18-22; peak 1.00, flat 0.60):
    # seq 2, 10:00-11:00 by register: 2 peak + 1 flat = 2.00 + 0.60 = 260 fen
    # seq 3, 11:00-12:00, registers not trusted: 3 kWh spread in time, all peak = 300 fen
    # seq 5, 13:00-14:00 by register: 0.5 peak + 0.5 flat = 0.50 + 0.30 = 80 fen
    # seq 8, 22:00-23:00 (from seq 6) by register: 1 peak + 1 flat = 1.60 -> 160 fen
    assert [(c["seq"], c["fen"]) for c in preview["charges"]] == [(2, 260), (3, 300), (5, 80), (8, 160)]
