"""Move-out settlement, transfer and move-in (退租结算、过户、新装; docs/billing.md "Move-in,
move-out and transfer"). Rules in core/domain/settlement.py; this reads the facts and runs
the steps, each idempotent by a deterministic id, in this order:

1. the settlement record (core/store/settlements.py): the inputs as first asked, so a rerun
   finishes the same settlement;
2. final readings: an admin-entered reading of an offline meter goes through the ingest
   path (rated and split by time-of-use band like any reading); otherwise the last rated
   reading (the console's 立即抄表 issues READ_NOW over the bridge first) is the final one;
3. transfer only: the new tenant's account opens (deterministic id) and the meters move to
   it at exactly the final reading (conditioned on the meter's baseline seq);
4. charge items: the plan (prorated charges, unused days credited back) is saved, then
   applied (`item:<item>:<period>` through core/services/bills.py, `settle:unused:...` credits);
5. money: open bills issued, the offset plan saved, then: deposit applied (ref `close`),
   bills paid from the balance (`settle:pay:<period>`, with the bill payment in the same
   transaction), the balance refunded (cash receipt or WeChat over recharges) or moved to
   the final bill (`settle:arrears`, with the bill line in the same transaction), the rest
   of the deposit refunded;
6. move-out only: the meters tripped (held open); the account closed once its balance is 0.
A crash between any two steps is finished by running the settlement again (tests inject
one at every step: `MoveOut.crash`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from aws_lambda_powertools import Logger

from core.domain import control as policy
from core.domain import settlement as rules
from core.domain.bills import CONFIRMED, DRAFT, ISSUED, Payment, bill_id_of
from core.domain.charge_items import AccountRef, RoomRef, period_of
from core.domain.charges import Charge
from core.domain.directory import Account, require_name, require_phone
from core.domain.errors import Conflict, NotFound, ValidationError
from core.domain.ledger import ACCOUNT_OPEN, EntryKind, format_time
from core.domain.money import yuan
from core.domain.rating import MeterReading
from core.domain.rating import entry_id as reading_entry_id
from core.domain.writes import AddBillLine, PayBill
from core.services import action_log, directory, tariffs
from core.store import bills as bills_store
from core.store import charge_items as items_store
from core.store import directory as dstore
from core.store import meters as meters_store
from core.store import settlements as store

log = Logger(service="feikong", child=True)

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")
NOT_FOUND = "该账户没有退租结算单"
PAY_METHOD = "balance"  # a bill paid from the prepaid balance at move-out (余额抵扣)


class Crash(BaseException):
    """Raised by an injected crash (tests): not an Exception, so nothing on the way catches it."""


@dataclass(frozen=True)
class Transfer:
    phone: str
    tenant_name: str = ""
    deposit: int = 0  # fen taken from the new tenant (押金), with deposit_receipt
    deposit_receipt: str = ""
    deposit_method: str = "cash"


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


class MoveOut:
    def __init__(self, actions, deposits=None, bills=None, ingest=None) -> None:
        from core.services.bills import Bills
        from core.services.deposits import Deposits

        self.actions = actions  # core/services/room_actions.py RoomActions
        self.control, self.clock = actions.control, actions.clock
        self.deposits = deposits or Deposits(self.control, self.clock)
        self.bills = bills or Bills(self.control, self.clock)
        self._ingest = ingest
        self.crash: Callable[[str], None] | None = None  # tests: called after each step

    @property
    def ledger(self):
        return self.control.ledger

    @property
    def ingest(self):
        if self._ingest is None:
            self._ingest = self.actions._ingest()
        return self._ingest

    def today(self) -> date:
        return self.clock().astimezone(BUSINESS_TZ).date()

    def _step(self, name: str) -> None:
        if self.crash is not None:
            self.crash(name)

    # -- inputs ----------------------------------------------------------------------------------

    def _meters(self, account_id: str) -> list:
        return sorted((m for m in dstore.meters_of_account(account_id) if not m.retired), key=lambda m: m.meter_id)

    def _inputs(self, acct: Account, day: object, method: object, receipt_no: object, readings: dict | None,
                transfer: Transfer | None) -> dict:
        """Everything checked before anything is written."""
        now = self.clock()
        opened = datetime.fromisoformat(acct.opened_at).astimezone(BUSINESS_TZ).date() if acct.opened_at else date.min
        d = rules.check_move_out_day(rules.parse_day(day), opened, self.today())
        if method not in rules.METHODS:
            raise ValidationError("退款方式必须是微信原路退回或现金", code="method_invalid", field="method")
        receipt = ""
        if method == "cash":
            from core.domain.payments import check_out_no

            receipt = check_out_no(receipt_no.strip() if isinstance(receipt_no, str) else receipt_no, "receipt_no")
        meters = self._meters(acct.account_id)
        if any(m.billing_mode == "meter" for m in meters):
            raise Conflict("表内计费的表计请先换表或转为平台计费后再结算", code="meter_side_unsupported")
        entered = {}
        for m in meters:
            raw = (readings or {}).get(m.meter_id)
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                continue
            state = meters_store.load_meter(m.meter_id)
            last = state.baseline.total if state and state.baseline else None
            hours = (now - state.baseline.read_at).total_seconds() / 3600 if state and state.baseline else 1.0
            total = rules.check_reading(raw, last, Decimal(str(m.rated_kw)), hours, f"表 {m.meter_id} 止码",
                                        f"reading_{m.meter_id}")
            entered[m.meter_id] = str(total)
        unknown = set(readings or {}) - {m.meter_id for m in meters}
        if unknown:
            raise ValidationError(f"账户没有表计 {', '.join(sorted(unknown))}", code="meter_not_found", field="readings")
        doc: dict = {"day": d.isoformat(), "method": method, "receipt_no": receipt, "readings": entered,
                     "read_at": now.isoformat(), "meters": [m.meter_id for m in meters]}
        if transfer is not None:
            phone = require_phone(transfer.phone.strip() if isinstance(transfer.phone, str) else transfer.phone)
            tenant = next((t for t in dstore.tenants_of_property(acct.property_id) if t.phone == phone), None)
            name = transfer.tenant_name.strip() if isinstance(transfer.tenant_name, str) else ""
            if tenant is None and not name:
                raise ValidationError("该手机号不是本物业已登记的租户，请填写新租户姓名", code="tenant_name_required",
                                      field="tenant_name")
            if tenant is not None and tenant.tenant_id == acct.tenant_id:
                raise ValidationError("新租户与原租户相同，无需过户", code="transfer_same_tenant", field="phone")
            if transfer.deposit:
                from core.domain import deposits as deposit_rules

                deposit_rules.movement(acct.account_id, acct.property_id, deposit_rules.TAKE, transfer.deposit,
                                       transfer.deposit_method, transfer.deposit_receipt, "check", "")
            doc["transfer"] = {"phone": phone, "tenant_name": require_name(name, "租户姓名", 50) if name else "",
                               "tenant_id": tenant.tenant_id if tenant else f"t-{_digest('tenant', acct.account_id)}",
                               "account_id": f"a-{_digest('transfer', acct.account_id)}",
                               "deposit": transfer.deposit, "deposit_receipt": transfer.deposit_receipt,
                               "deposit_method": transfer.deposit_method}
        return doc

    # -- preview ---------------------------------------------------------------------------------

    def preview(self, property_id: str, account_id: str, *, day: object, method: object = "cash",
                receipt_no: object = "PREVIEW0", readings: dict | None = None,
                transfer: Transfer | None = None) -> dict:
        """The settlement as it would come out now (nothing written): admin-entered readings
        rated by the production judgement, the charge item plan, the offset."""
        acct = self._open(property_id, account_id)
        doc = self._inputs(acct, day, method, receipt_no or "PREVIEW0", readings, transfer)
        finals, energy = [], 0
        for mid in doc["meters"]:
            r, fen = self._estimate(mid, doc)
            finals.append(r)
            energy += fen
        d = date.fromisoformat(doc["day"])
        adjustments = self._item_plan(acct, d)
        balance = self.ledger.state(account_id, fresh=True).balance - energy
        bills = self._open_bills(account_id)
        extra_bill = 0
        for a in adjustments:
            balance += a.credit
            if a.to_charge and a.charge is not None:
                if a.charge.mode == "deduct":
                    balance -= a.to_charge
                else:
                    extra_bill += a.to_charge
        if extra_bill:
            bills = [*bills, rules.OpenBill(bill_id_of(account_id, period_of(d)) + "*", period_of(d), extra_bill)]
        off = rules.offset(balance, bills, self.deposits.store.held(account_id))
        return self._statement(acct, doc, finals, adjustments, off, bills, status="preview", results={})

    def _estimate(self, meter_id: str, doc: dict) -> tuple[dict, int]:
        m = meters_store.load_meter(meter_id)
        b = m.baseline if m else None
        entered = doc["readings"].get(meter_id)
        if entered is None or b is None:
            return self._final(m, "bridge"), 0
        from core.domain import rating

        at = datetime.fromisoformat(doc["read_at"])
        r = MeterReading(meter_id, b.seq + 1, at, Decimal(entered), {})
        fen = 0
        if m.billing_mode == "cloud" and m.plan_id:
            out = rating.judge(tariffs.plan(m.plan_id), b, r, m.rated_kw, now=self.clock())
            fen = out.charge.fen if out.charge is not None else 0
        return {"meter_id": meter_id, "kind": str(m.kind), "seq": r.seq, "total": entered, "registers": {},
                "read_at": at.isoformat(), "source": "admin", "fen": fen,
                "previous_total": str(b.total)}, fen

    def _final(self, m, source: str) -> dict:
        b = m.baseline if m else None
        if b is None:
            return {"meter_id": m.meter_id if m else "", "kind": str(m.kind) if m else "", "seq": None, "total": None,
                    "registers": {}, "read_at": None, "source": source, "fen": 0}
        entry = self.ledger.store.get_entry(m.account_id, reading_entry_id(m.meter_id, b.seq))
        return {"meter_id": m.meter_id, "kind": str(m.kind), "seq": b.seq, "total": str(b.total),
                "registers": {k: str(v) for k, v in sorted(b.registers.items())}, "read_at": b.read_at.isoformat(),
                "source": source, "fen": -entry.amount if entry is not None else 0}

    # -- the steps -------------------------------------------------------------------------------

    def _open(self, property_id: str, account_id: str) -> Account:
        acct = directory.account_in_property(property_id, account_id)
        if acct.status != ACCOUNT_OPEN:
            raise Conflict("账户已销户", code="account_closed")
        return acct

    def settle(self, who, property_id: str, account_id: str, *, day: object, method: object,
               receipt_no: object = "", readings: dict | None = None, transfer: Transfer | None = None) -> dict:
        """Settle a move-out (or a transfer, with `transfer`); run again after a crash, it
        finishes the settlement begun first (its inputs as then given)."""
        acct = directory.account_in_property(property_id, account_id)
        s = store.get(account_id)
        if s is None:
            if acct.status != ACCOUNT_OPEN:
                raise Conflict("账户已销户", code="account_closed")
            doc = self._inputs(acct, day, method, receipt_no, readings, transfer)
            store.create(account_id, property_id, doc, "reading", format_time(self.clock()), who.actor)
            s = store.get(account_id)
            action_log.record(who.admin, "settlement_started", property_id=property_id, target=account_id,
                              before=None, after={k: v for k, v in doc.items() if k != "meters"}, ip=who.ip,
                              record_id=f"settlement-{account_id}", clock=self.clock)
        if s.status in ("closing", "settled"):
            return self.statement(property_id, account_id)
        return self._run(who, acct, s)

    def _save(self, s, status: str, **kw):
        if not store.update(s, status=status, at=format_time(self.clock()), **kw):
            raise Conflict("结算正在由他人办理，请刷新后查看", code="settlement_busy")
        return store.get(s.account_id)

    def _run(self, who, acct: Account, s) -> dict:
        doc = dict(s.doc)
        account_id, property_id = acct.account_id, acct.property_id
        # 2. final readings
        if "finals" not in doc:
            finals = [self._read(mid, doc) for mid in doc["meters"]]
            self._step("readings")
            doc["finals"] = finals
            s = self._save(s, "reading", doc=doc)
        # 3. transfer: the new account and the meters at the final reading
        t = doc.get("transfer")
        if t is not None and not doc.get("moved"):
            self._open_new(who, acct, t, date.fromisoformat(doc["day"]))
            self._step("new_account")
            doc["finals"] = [self._move(f, account_id, t["account_id"]) for f in doc["finals"]]
            self._step("meters_moved")
            doc["moved"] = True
            s = self._save(s, "reading", doc=doc)
        # 4. charge items: plan once, then apply
        d = date.fromisoformat(doc["day"])
        if "items" not in doc:
            doc["items"] = [self._adj_json(a) for a in self._item_plan(acct, d)]
            s = self._save(s, "items", doc=doc)
        for a in doc["items"]:
            self._apply_item(acct, a, who.actor)
            self._step(f"item:{a['item_id']}:{a['period']}")
        # 5. money
        if "offset" not in doc:
            self._issue_open(property_id, account_id, who.actor)
            bills = self._open_bills(account_id)
            off = rules.offset(self.ledger.state(account_id, fresh=True).balance, bills,
                               self.deposits.store.held(account_id))
            doc["offset"] = asdict(off)
            doc["open_bills"] = [asdict(b) for b in bills]
            s = self._save(s, "money", doc=doc)
            self._step("offset_planned")
        off = rules.Offset(**{**doc["offset"], "bill_payments": tuple(tuple(p) for p in doc["offset"]["bill_payments"])})
        results = self._money(who, acct, doc, off)
        if results and "results" not in doc:
            doc["results"] = results
            s = self._save(s, "money", doc=doc)
        results = doc.get("results") or results
        # 6. supply and close
        if t is None:
            for mid in doc["meters"]:
                m = dstore.get_meter(mid)
                if m is not None and not m.retired and m.account_id == account_id:
                    self.control.manual_relay(property_id, mid, policy.TRIP, "退租", who.actor)
            self._step("tripped")
        closed = self.actions._close_if_settled(account_id)
        self._step("closed")
        statement = self._statement(acct, doc, doc["finals"], [_adj(a) for a in doc["items"]], off,
                                    [rules.OpenBill(**b) for b in doc["open_bills"]],
                                    status="refunding" if not closed else ("closing" if off.still_owed else "settled"),
                                    results=results)
        s = store.get(account_id)
        if s.statement is None or s.status != statement["status"]:
            self._save(s, statement["status"], statement=statement)
            action_log.record(who.admin, "settlement_done" if closed else "settlement_refunding",
                              property_id=property_id, target=account_id, before=None,
                              after={"status": statement["status"], "refund_total": off.refund_total,
                                     "still_owed": off.still_owed, "new_account_id": (t or {}).get("account_id")},
                              ip=who.ip, record_id=f"settlement-{account_id}-{statement['status']}", clock=self.clock)
        log.info("settlement run", account_id=account_id, status=statement["status"], refund=off.refund_total,
                 owed=off.still_owed)
        return self.statement(property_id, account_id)

    def _read(self, meter_id: str, doc: dict) -> dict:
        """The meter's final reading: the admin's (through the ingest path) or the last rated."""
        m = meters_store.load_meter(meter_id)
        entered = doc["readings"].get(meter_id)
        at = datetime.fromisoformat(doc["read_at"])
        if entered is None:
            return self._final(m, "bridge")
        b = m.baseline
        if b is None or b.read_at < at:  # not ingested yet (a rerun finds it done)
            if b is None:
                raise Conflict(f"表 {meter_id} 尚无读数基线，无法录入止码", code="meter_no_baseline")
            result = self.ingest.reading(m.site_id, MeterReading(meter_id, b.seq + 1, at, Decimal(entered), {}))
            m = meters_store.load_meter(meter_id)
            if m.baseline.read_at < at:
                raise Conflict(f"表 {meter_id} 的止码未能计费（{result}），请检查读数或先处理异常", code="reading_not_rated")
        return {**self._final(m, "admin"), "previous_total": str(b.total)}

    def _open_new(self, who, acct: Account, t: dict, d: date) -> None:
        """The incoming tenant's account on the same room (deterministic ids: a rerun finds it)."""
        if dstore.get_tenant(t["tenant_id"]) is None:
            try:
                directory.register_tenant(acct.property_id, t["tenant_id"], t["tenant_name"], t["phone"])
            except Conflict:
                pass
        if dstore.get_account(t["account_id"]) is None:
            try:
                directory.open_account(acct.property_id, t["account_id"], acct.building_id, acct.room_id,
                                       t["tenant_id"], acct.name, actor=who.actor, clock=self.clock)
            except Conflict:
                pass
            action_log.record(who.admin, "account_opened", property_id=acct.property_id, target=t["account_id"],
                              before=None, after={"room": f"{acct.building_id}/{acct.room_id}",
                                                  "tenant_id": t["tenant_id"], "phone": t["phone"],
                                                  "transfer_from": acct.account_id},
                              ip=who.ip, record_id=f"transfer-{acct.account_id}", clock=self.clock)

    def _move(self, final: dict, old: str, new: str) -> dict:
        """Move one meter to the new account at exactly its final reading; a reading rated
        meanwhile (still the old tenant's) becomes the final one and the move is tried again."""
        for _ in range(10):
            m = meters_store.load_meter(final["meter_id"])
            if m.account_id == new:
                return final
            if m.baseline is None:
                raise Conflict(f"表 {m.meter_id} 尚无读数，无法过户", code="meter_no_baseline")
            if m.baseline.seq != final["seq"]:
                final = {**final, **self._final(m, final["source"])}
            if store.move_meter(m.meter_id, old, new, m.baseline.seq):
                self.control.supply_changed(new)
                return final
        raise Conflict("表计读数变化频繁，请稍后重试过户", code="settlement_busy")

    # -- charge items ----------------------------------------------------------------------------

    def _room(self, acct: Account) -> RoomRef:
        room = next((r for r in dstore.rooms(acct.property_id, acct.building_id) if r.room_id == acct.room_id), None)
        return RoomRef(acct.building_id, acct.room_id, room.area_m2 if room else "", room.name if room else "")

    def _applied(self, account_id: str, charge_id: str) -> int | None:
        period = charge_id.rsplit(":", 1)[1]
        entry = self.ledger.store.get_entry(account_id, charge_id)
        line = bills_store.get_line(account_id, period, charge_id)
        if entry is None and line is None:
            return None
        return (-entry.amount if entry else 0) + (line.amount if line else 0)

    def _item_plan(self, acct: Account, d: date) -> list[rules.ItemAdjustment]:
        versions = [v for v in items_store.versions(acct.property_id)
                    if v.applies_to(acct.building_id, acct.room_id)]
        today = period_of(self.today())
        applied = {}
        for cid in rules.charge_ids_to_check(versions, d, today):
            a = self._applied(acct.account_id, cid)
            if a is not None:
                applied[cid] = a
        return rules.move_out_items(versions, self._room(acct), AccountRef(acct.account_id, acct.property_id), d,
                                    today, applied)

    @staticmethod
    def _adj_json(a: rules.ItemAdjustment) -> dict:
        c = a.charge
        return {"item_id": a.item_id, "name": a.name, "period": a.period, "applied": a.applied, "due": a.due,
                "formula": a.formula, "charge": None if c is None else {
                    "account_id": c.account_id, "property_id": c.property_id, "period": c.period, "source": c.source,
                    "source_id": c.source_id, "amount": c.amount, "name": c.name, "formula": c.formula,
                    "inputs": c.inputs, "mode": c.mode}}

    def _apply_item(self, acct: Account, a: dict, actor: str) -> None:
        adj = _adj(a)
        if adj.to_charge and adj.charge is not None:
            self.bills.apply_charges([adj.charge], actor=actor)
        if adj.credit:
            self.ledger.post(account_id=acct.account_id, entry_id=f"settle:{adj.credit_id}",
                             kind=str(EntryKind.ADJUST_CREDIT), amount=adj.credit,
                             cause=f"settlement:{acct.account_id}", actor=actor,
                             memo=f"退租退还未使用天数：{adj.name}"[:100])

    # -- bills and money -------------------------------------------------------------------------

    def _open_bills(self, account_id: str) -> list[rules.OpenBill]:
        out = []
        for b in bills_store.bills_of_account(account_id):
            if b.state in (DRAFT, CONFIRMED, ISSUED) and b.total - b.paid > 0:
                out.append(rules.OpenBill(b.bill_id, b.period, b.total - b.paid))
        return out

    def _issue_open(self, property_id: str, account_id: str, actor: str) -> None:
        """Every draft or confirmed bill of the account with something on it is issued: at
        move-out all of it is due."""
        for b in bills_store.bills_of_account(account_id):
            if b.total <= 0:
                continue
            if b.state == DRAFT:
                self.bills.transition(property_id, b.bill_id, "confirm", actor)
            if b.state in (DRAFT, CONFIRMED):
                self.bills.transition(property_id, b.bill_id, "issue", actor)

    def _money(self, who, acct: Account, doc: dict, off: rules.Offset) -> dict:
        account_id, property_id = acct.account_id, acct.property_id
        results: dict = {}
        if off.deposit_applied:
            self.deposits.apply(None, property_id, account_id, "close", off.deposit_applied, actor=who.actor)
            self._step("deposit_applied")
        for bill_id, amount in off.bill_payments:
            self._pay_bill(acct, bill_id, amount, who.actor)
            self._step(f"paid:{bill_id}")
        if off.refund:
            results["refunds"] = self._refund(who, acct, doc, off.refund)
            self._step("refunded")
        if off.arrears:
            results["arrears_bill"] = self._arrears(acct, doc, off.arrears, who.actor)
            self._step("arrears")
        if off.deposit_refunded:
            method = "cash" if doc["method"] == "cash" else "bank"
            self.deposits.refund(who.admin, property_id, account_id, off.deposit_refunded, method,
                                 f"settle-{account_id}", "退租退还押金", who.ip)
            self._step("deposit_refunded")
        return results

    def _pay_bill(self, acct: Account, bill_id: str, amount: int, actor: str) -> None:
        account_id, period = bill_id.rsplit(":", 1)
        entry_id = f"settle:pay:{period}"
        if self.ledger.store.get_entry(acct.account_id, entry_id) is not None:
            return
        b = bills_store.get_bill(account_id, period)
        p = Payment(account_id, period, f"settle-{account_id}", amount, PAY_METHOD, actor, format_time(self.clock()),
                    "退租结算：预付余额抵扣")
        self.ledger.post(extras=[PayBill(p, b.total, b.paid)], fresh=True, account_id=account_id, entry_id=entry_id,
                         kind=str(EntryKind.ADJUST_DEBIT), amount=amount, cause=f"bill:{bill_id}", actor=actor,
                         memo="退租结算：余额抵扣账单")

    def _refund(self, who, acct: Account, doc: dict, amount: int) -> list[dict]:
        account_id, property_id = acct.account_id, acct.property_id
        if doc["method"] == "cash":
            no = self.actions._claim_receipt(who, property_id, account_id, doc["receipt_no"], amount, "cash_refund")
            self.actions.payments.counter_refund(property_id, account_id, amount, no, who.actor)
            return [{"method": "cash", "receipt_no": no, "amount": amount}]
        left = min(amount, self.ledger.state(account_id, fresh=True).balance)  # what a crash left unrefunded
        out = []
        for order, can in self.actions.refundable_orders(property_id, account_id):
            if left <= 0:
                break
            part = min(can, left)
            r = self.actions.payments.refund(property_id, order.out_trade_no, part, "退租退款", who.actor)
            out.append({"method": "wechat", "out_refund_no": r.out_refund_no, "amount": part, "status": r.status})
            left -= part
        if left > 0:
            raise Conflict(f"可原路退回的微信充值不足，尚有 {yuan(left)} 元未退，请改用现金退款",
                           code="wechat_refundable_short")
        return out

    def _arrears(self, acct: Account, doc: dict, amount: int, actor: str) -> str:
        """What the balance still owes moves to the final bill, in one transaction with the
        credit that brings the balance to zero; the bill is issued."""
        period = period_of(date.fromisoformat(doc["day"]))
        charge = Charge(account_id=acct.account_id, property_id=acct.property_id, period=period, source="settlement",
                        source_id=acct.account_id, amount=amount, name="退租结算欠费",
                        formula=f"退租结算后预付余额 -{yuan(amount)} 元（含未出账用量与已抵扣的押金），转入最终账单",
                        inputs={"move_out_day": doc["day"]}, mode="bill")
        from core.domain.bills import BillLine

        line = BillLine.of(charge, amount, format_time(self.clock()), actor)
        self.ledger.post(extras=[AddBillLine(line, acct.property_id, None, None, acct.building_id, acct.room_id,
                                             acct.name)],
                         fresh=True, account_id=acct.account_id, entry_id="settle:arrears",
                         kind=str(EntryKind.ADJUST_CREDIT), amount=amount,
                         cause=f"bill:{bill_id_of(acct.account_id, period)}", actor=actor, memo="退租结算：欠费转入账单")
        self._issue_open(acct.property_id, acct.account_id, actor)
        return bill_id_of(acct.account_id, period)

    # -- move-in ---------------------------------------------------------------------------------

    def move_in_charges(self, acct: Account, move_in: date, actor: str) -> list:
        """Every charge item's current cycle from the move-in day (prorated by days)."""
        versions = [v for v in items_store.versions(acct.property_id) if v.applies_to(acct.building_id, acct.room_id)]
        charges = rules.move_in_charges(versions, self._room(acct), AccountRef(acct.account_id, acct.property_id),
                                        move_in)
        return self.bills.apply_charges(charges, actor=actor) if charges else []

    def move_in(self, who, property_id: str, building_id: str, room_id: str, *, phone: object,
                tenant_name: object = "", day: object = None, deposit: int = 0, deposit_method: object = "cash",
                deposit_receipt: object = "") -> dict:
        """新装: open the account, take the deposit, start the charge items from the move-in day."""
        d = rules.parse_day(day or self.today().isoformat(), "day", "入住日期")
        if deposit:
            from core.domain import deposits as deposit_rules

            deposit_rules.movement("a-check", property_id, deposit_rules.TAKE, deposit, deposit_method,
                                   deposit_receipt, "check", "")
        acct = self.actions.open_account(who, property_id, building_id, room_id, phone=phone, tenant_name=tenant_name)
        if deposit:
            self.deposits.take(who.admin, property_id, acct.account_id, deposit, deposit_method, deposit_receipt,
                               "入住押金", who.ip)
        results = self.move_in_charges(acct, d, who.actor)
        return {"account_id": acct.account_id, "charges": [r.charge_id for r in results]}

    def read_now(self, who, property_id: str, account_id: str) -> list[str]:
        """立即抄表: READ_NOW to every meter of the account over its site's bridge (the
        reading comes back through the uplink and is rated as usual)."""
        acct = self._open(property_id, account_id)
        minute = self.clock().strftime("%Y%m%d%H%M")
        out = [self.control.issue(m.meter_id, policy.READ_NOW, f"move-out:{acct.account_id}:{minute}",
                                  who.actor).command_id for m in self._meters(account_id)]
        action_log.record(who.admin, "read_now", property_id=property_id, target=account_id, before=None,
                          after={"commands": out}, ip=who.ip, record_id=f"read-now-{account_id}-{minute}",
                          clock=self.clock)
        return out

    # -- the statement ---------------------------------------------------------------------------

    def _statement(self, acct: Account, doc: dict, finals: list[dict], items: list[rules.ItemAdjustment],
                   off: rules.Offset, bills: list[rules.OpenBill], *, status: str, results: dict) -> dict:
        tenant = dstore.get_tenant(acct.tenant_id)
        prop = dstore.get_property(acct.property_id)
        t = doc.get("transfer")
        return {
            "account_id": acct.account_id, "property_id": acct.property_id,
            "property_name": prop.name if prop else "", "room": f"{acct.building_id}/{acct.room_id}",
            "account_name": acct.name, "tenant_name": tenant.name if tenant else "",
            "day": doc["day"], "method": doc["method"], "method_name": rules.METHODS[doc["method"]],
            "status": status, "status_name": rules.SETTLEMENT_NAMES.get(status, "预览"),
            "readings": finals,
            "items": [{"item_id": a.item_id, "name": a.name, "period": a.period, "applied": a.applied, "due": a.due,
                       "charged": a.to_charge, "credited": a.credit, "text": a.text()} for a in items],
            "balance": off.balance, "open_bills": [asdict(b) for b in bills], "owed_bills": off.owed_bills,
            "deposit": {"held": off.held, "applied": off.deposit_applied, "refunded": off.deposit_refunded},
            "bill_payments": [{"bill_id": b, "amount": a} for b, a in off.bill_payments],
            "refund": off.refund, "arrears": off.arrears, "refund_total": off.refund_total,
            "still_owed": off.still_owed, "refunds": results.get("refunds", []),
            "arrears_bill": results.get("arrears_bill"),
            "transfer": {"account_id": t["account_id"], "phone": t["phone"],
                         "move_in": rules.transfer_move_in(date.fromisoformat(doc["day"])).isoformat()} if t else None,
            "settled_at": format_time(self.clock()),
        }

    def statement(self, property_id: str | None, account_id: str) -> dict:
        return statement(property_id, account_id)

    def pending(self, property_id: str, account_id: str) -> dict | None:
        """A settlement begun and not finished (a crash, a WeChat refund processing): its inputs."""
        s = store.get(account_id)
        if s is None or s.property_id != property_id or s.status in ("closing", "settled"):
            return None
        return {"status": s.status, **s.doc}


def _adj(a: dict) -> rules.ItemAdjustment:
    c = a.get("charge")
    return rules.ItemAdjustment(a["item_id"], a["name"], a["period"], a["applied"], a["due"], a.get("formula", ""),
                                Charge(**c) if c else None)


def statement(property_id: str | None, account_id: str) -> dict:
    """The saved statement (结算单) with its status now: "closing" becomes "settled" once
    the bills it left are paid. Another property's is a 404 like a missing one."""
    s = store.get(account_id)
    if s is None or s.statement is None or (property_id is not None and s.property_id != property_id):
        raise NotFound(NOT_FOUND, code="settlement_not_found")
    out = dict(s.statement)
    if out["status"] == "closing":
        left = sum(b.total - b.paid for b in bills_store.bills_of_account(account_id)
                   if b.state in (DRAFT, CONFIRMED, ISSUED) and b.total > b.paid)
        out["still_owed_now"] = left
        if left == 0:
            out["status"], out["status_name"] = "settled", rules.SETTLEMENT_NAMES["settled"]
    return out


def tenant_statement(openid: str, account_id: object) -> dict:
    """The settlement statement of an account of the WeChat user (another's: 404)."""
    from core.services import tenancy

    return statement(None, tenancy.require_member(openid, account_id))
