"""The console's room actions (docs/console.md, "Room actions"): what an admin does to a
room's accounts and meters, each through the service that owns the rule (directory,
payments, control, tariffs, meters, bindings) and each recorded in the action log with
the state before and after.

Both the console's forms and its JSON API (miniprogram_api/console_actions.py) call
these; the caller has checked the admin's role and property (admin_required). Bad input
raises ValidationError (400 / a 422 form) before anything changes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from core.domain import control as policy
from core.domain import room_actions as rules
from core.domain.admins import AdminPrincipal
from core.domain.directory import Account, Meter, require_name, require_phone
from core.domain.errors import Conflict, NotFound, ValidationError
from core.domain.ledger import ACCOUNT_CLOSED, ACCOUNT_OPEN, AccountState, Entry, format_time, require_id
from core.domain.money import yuan
from core.domain.payments import PAID, REFUND_PROCESSING, Order, refundable
from core.services import action_log, bindings, directory, tariffs
from core.services import meters as meter_service
from core.services.payments import Payments
from core.store import console_codes
from core.store import directory as dstore
from core.store import payments as payments_store


@dataclass(frozen=True)
class Who:
    """The admin acting and the address the request came from."""

    admin: AdminPrincipal
    ip: str = ""

    @property
    def actor(self) -> str:
        return f"admin:{self.admin.admin_id}"


def snapshot(state: AccountState) -> dict:
    """An account as the action log keeps it (before / after)."""
    c = state.control
    return {"balance": state.balance, "overdraft_limit": state.overdraft_limit, "status": state.status,
            "keep_supply": bool(c.get("keep_supply")), "restore_line": int(c.get("restore_line") or 0),
            "alarm_levels": c.get("alarm_levels"), "cut_state": c.get("cut_state") or "none",
            "payment_mode": c.get("payment_mode") or "prepaid"}


def meter_snapshot(m: Meter) -> dict:
    return {"meter_id": m.meter_id, "plan_id": m.plan_id, "keep_supply": m.keep_supply, "relay": str(m.relay_state),
            "retired": m.retired, "last_total": m.last_reading.total if m.last_reading else None}


class RoomActions:
    def __init__(self, payments: Payments | None = None) -> None:
        self.payments = payments or Payments()

    @property
    def control(self):
        return self.payments.control

    @property
    def clock(self):
        return self.payments.clock

    def _state(self, account_id: str) -> AccountState:
        return self.control.ledger.state(account_id, fresh=True)

    def _record(self, who: Who, action: str, property_id: str, target: str, before: dict | None,
                after: dict | None, record_id: str | None = None) -> None:
        action_log.record(who.admin, action, property_id=property_id, target=target, before=before, after=after,
                          ip=who.ip, record_id=record_id, clock=self.clock)

    def _open_account(self, property_id: str, account_id: str) -> Account:
        a = directory.account_in_property(property_id, account_id)
        if a.status != ACCOUNT_OPEN:
            raise Conflict("账户已销户", code="account_closed")
        return a

    def _meter(self, property_id: str, meter_id: str) -> Meter:
        m = dstore.get_meter(require_id(meter_id, "meter_id"))
        if m is None or m.property_id != property_id:
            raise NotFound("表计不存在", code="meter_not_found")
        return m

    # -- accounts and meters -------------------------------------------------------------

    def open_account(self, who: Who, property_id: str, building_id: str, room_id: str, *, phone: object,
                     tenant_name: object = "", name: object = "", overdraft_limit: int = 0) -> Account:
        """Open an account in a room for a tenant found by phone among the property's
        tenants (registered before: nothing else to type), or registered now with a name."""
        phone = require_phone(phone.strip() if isinstance(phone, str) else phone)
        if isinstance(overdraft_limit, bool) or not isinstance(overdraft_limit, int) or overdraft_limit < 0:
            raise ValidationError("透支额度不能为负数", code="overdraft_invalid", field="overdraft_limit")
        room = next((r for r in dstore.rooms(property_id, require_id(building_id, "building_id"))
                     if r.room_id == room_id), None)
        if room is None:
            raise NotFound("房间不存在", code="room_not_found")
        tenant = next((t for t in dstore.tenants_of_property(property_id) if t.phone == phone), None)
        if tenant is None:
            if not isinstance(tenant_name, str) or not tenant_name.strip():
                raise ValidationError("该手机号不是本物业已登记的租户，请填写租户姓名", code="tenant_name_required",
                                      field="tenant_name")
            tenant = directory.register_tenant(property_id, f"t-{uuid.uuid4().hex[:12]}",
                                               require_name(tenant_name, "租户姓名", 50), phone)
        account_name = name.strip() if isinstance(name, str) and name.strip() else room.name
        account = directory.open_account(property_id, f"a-{uuid.uuid4().hex[:12]}", building_id, room_id,
                                         tenant.tenant_id, require_name(account_name, "账户名称"),
                                         overdraft_limit=overdraft_limit, actor=who.actor, clock=self.clock)
        self._record(who, "account_opened", property_id, account.account_id, None,
                     {"room": f"{building_id}/{room_id}", "tenant_id": tenant.tenant_id, "tenant_name": tenant.name,
                      "phone": tenant.phone, "name": account.name, "overdraft_limit": overdraft_limit})
        return account

    def add_meter(self, who: Who, property_id: str, account_id: str, *, meter_id: object, site_id: object,
                  kind: object, model: object, bus: object, address: object, billing_mode: object = "cloud",
                  plan_id: object = "") -> Meter:
        """Another meter on an open account (an account may hold several), with its plan."""
        self._open_account(property_id, account_id)
        if isinstance(plan_id, str) and plan_id.strip():
            tariffs.export_plan(property_id, plan_id.strip())  # the plan must be the property's: before the meter
        m = directory.add_meter(property_id, meter_id, account_id, site_id, kind, model, bus, address,
                                billing_mode=billing_mode)
        if isinstance(plan_id, str) and plan_id.strip():
            tariffs.assign(property_id, m.meter_id, plan_id.strip())
        self._record(who, "meter_added", property_id, m.meter_id, None,
                     {"account_id": account_id, "site_id": m.site_id, "kind": str(m.kind), "model": m.model,
                      "bus": m.bus, "address": m.address, "billing_mode": str(m.billing_mode),
                      "plan_id": (plan_id or "").strip() or None})
        return dstore.get_meter(m.meter_id)

    def issue_binding_code(self, who: Who, property_id: str, account_id: str) -> console_codes.BindingCode:
        b = bindings.issue(property_id, account_id, who.admin.name, self.clock)
        self._record(who, "binding_code_issued", property_id, account_id, None,
                     {"tenant_id": b.tenant_id, "code": rules.show_binding_code(b.code), "expires_at": b.expires_at})
        return b

    def assign_tariff(self, who: Who, property_id: str, meter_id: str, plan_id: object) -> Meter:
        m = self._meter(property_id, meter_id)
        if not isinstance(plan_id, str) or not plan_id.strip():
            raise ValidationError("请选择电价方案", code="plan_required", field="plan_id")
        tariffs.assign(property_id, meter_id, plan_id.strip())
        self._record(who, "tariff_assigned", property_id, meter_id, {"plan_id": m.plan_id},
                     {"plan_id": plan_id.strip()})
        return dstore.get_meter(meter_id)

    # -- money ---------------------------------------------------------------------------

    def _claim_receipt(self, who: Who, property_id: str, account_id: str, receipt_no: object, amount: int,
                       channel: str) -> str:
        """A receipt number is used once per property: the same submission again (a double
        click, a retry) goes on, idempotent by the ledger entry id; any other use is refused."""
        from core.domain.payments import check_out_no

        no = check_out_no(receipt_no.strip() if isinstance(receipt_no, str) else receipt_no, "receipt_no")
        r = console_codes.Receipt(no, property_id, account_id, amount, channel, format_time(self.clock()),
                                  who.admin.name)
        if not console_codes.claim_receipt(r):
            found = console_codes.get_receipt(property_id, no)
            if found is None or (found.account_id, found.amount, found.channel) != (account_id, amount, channel):
                raise Conflict(f"收据号 {no} 已被使用", code="receipt_used", field="receipt_no")
        return no

    def counter_recharge(self, who: Who, property_id: str, account_id: str, amount: int,
                         receipt_no: object) -> Entry:
        """Cash at the counter: a credit under `cash:<receipt>`; a credit that lifts the
        balance above the restore line restores supply at once (Control.credit)."""
        from core.domain.money import require_fen

        self._open_account(property_id, account_id)
        amount = require_fen(amount, "amount")
        before = self._state(account_id)
        no = self._claim_receipt(who, property_id, account_id, receipt_no, amount, "cash")
        entry = self.payments.counter_recharge(property_id, account_id, amount, no, "cash", who.actor)
        if not entry.duplicate:
            self._record(who, "counter_recharge", property_id, account_id, snapshot(before),
                         {**snapshot(self._state(account_id)), "amount": amount, "receipt_no": no},
                         record_id=f"receipt-{no}")
        return entry

    def receipt(self, property_id: str, receipt_no: str) -> dict:
        """A counter receipt as printed: the claim, its ledger entry, account and tenant."""
        from core.domain.payments import check_out_no

        no = check_out_no(receipt_no, "receipt_no")
        r = console_codes.get_receipt(property_id, no)
        if r is None:
            raise NotFound("收据不存在", code="receipt_not_found")
        entry_id = f"{'cash' if r.channel == 'cash' else 'cash-refund'}:{no}"
        entry = self.control.ledger.store.get_entry(r.account_id, entry_id)
        account = dstore.get_account(r.account_id)
        tenant = dstore.get_tenant(account.tenant_id) if account else None
        prop = dstore.get_property(property_id)
        return {"receipt": r, "entry": entry, "account": account, "tenant": tenant, "property": prop,
                "kind": "充值" if r.channel == "cash" else "退款"}

    def refundable_orders(self, property_id: str, account_id: str) -> list[tuple[Order, int]]:
        """The account's paid WeChat recharges with what each can still refund, newest first."""
        directory.account_in_property(property_id, account_id)
        return [(o, refundable(o)) for o in payments_store.orders_of_account(account_id)
                if o.status == PAID and o.channel == "wechat" and o.property_id == property_id and refundable(o) > 0]

    def refund(self, who: Who, property_id: str, account_id: str, method: object, amount: int, *,
               reason: object = "", out_trade_no: object = "", receipt_no: object = "") -> dict:
        """Refund to WeChat (part of a paid recharge of this account) or in cash (a receipt)."""
        from core.domain.money import require_fen

        self._open_account(property_id, account_id)
        amount = require_fen(amount, "amount")
        reason = rules.require_reason(reason)
        before = self._state(account_id)
        if method == "wechat":
            if not isinstance(out_trade_no, str) or not out_trade_no:
                raise ValidationError("请选择要退款的微信充值订单", code="order_required", field="out_trade_no")
            order = payments_store.get_order(out_trade_no)
            if order is None or order.account_id != account_id:
                raise NotFound("订单不存在", code="order_not_found")
            if amount > before.balance:
                raise Conflict(f"退款金额超过账户余额 {yuan(before.balance)} 元", code="refund_over_balance")
            r = self.payments.refund(property_id, out_trade_no, amount, reason, who.actor)
            result = {"method": "wechat", "out_refund_no": r.out_refund_no, "status": r.status, "amount": amount}
            action, target_id = "refund_wechat", r.out_refund_no
        elif method == "cash":
            no = self._claim_receipt(who, property_id, account_id, receipt_no, amount, "cash_refund")
            entry = self.payments.counter_refund(property_id, account_id, amount, no, who.actor)
            result = {"method": "cash", "receipt_no": no, "amount": amount, "duplicate": entry.duplicate}
            action, target_id = "refund_cash", no
            if entry.duplicate:
                return result
        else:
            raise ValidationError("退款方式必须是微信原路退回或现金", code="method_invalid", field="method")
        self._record(who, action, property_id, account_id, snapshot(before),
                     {**snapshot(self._state(account_id)), **result, "reason": reason}, record_id=f"{action}-{target_id}")
        return result

    # -- settings and supply -------------------------------------------------------------

    def settings(self, who: Who, property_id: str, account_id: str, *, overdraft_limit: int | None = None,
                 restore_line: int | None = None, alarm_levels: list[int] | None = None,
                 keep_supply: bool | None = None, payment_mode: str | None = None) -> dict:
        """Alarm amounts, overdraft, restore line, keep-supply (保电), payment mode (后付费:
        never cut for money): Control re-decides the supply at once (a lower overdraft may
        cut; keep-supply lifted may cut; turning post-paid restores)."""
        self._open_account(property_id, account_id)
        before = self._state(account_id)
        decision = self.control.configure_account(property_id, account_id, who.actor, overdraft_limit=overdraft_limit,
                                                  restore_line=restore_line, alarm_levels=alarm_levels,
                                                  keep_supply=keep_supply, payment_mode=payment_mode)
        after = snapshot(self._state(account_id))
        self._record(who, "account_settings", property_id, account_id, snapshot(before), after)
        return {**after, "decision": decision.reason or None}

    def meter_keep_supply(self, who: Who, property_id: str, meter_id: str, keep: object) -> Meter:
        m = self._meter(property_id, meter_id)
        self.control.set_meter_keep_supply(property_id, meter_id, keep, who.actor)
        self.control.supply_changed(m.account_id)  # the meter's intended relay may have changed
        self._record(who, "meter_keep_supply", property_id, meter_id, {"keep_supply": m.keep_supply},
                     {"keep_supply": keep})
        return dstore.get_meter(meter_id)

    def manual_relay(self, who: Who, property_id: str, meter_id: str, op: str, reason: object) -> policy.Command:
        """Trip or close one meter by hand, with a reason; supply stays reconciled (Control)."""
        reason = rules.require_reason(reason)
        m = self._meter(property_id, meter_id)
        command = self.control.manual_relay(property_id, meter_id, op, reason, who.actor)
        action = "manual_trip" if op == policy.TRIP else "manual_close"
        self._record(who, action, property_id, meter_id, {"relay": str(m.relay_state)},
                     {"command_id": command.command_id, "op": op, "reason": reason, "account_id": m.account_id},
                     record_id=f"{action}-{command.command_id}")
        return command

    def replace_meter(self, who: Who, property_id: str, old_meter_id: str, new_meter_id: object,
                      final_total: object, initial_total: object, read_at: datetime | None = None) -> dict:
        """Retire the old meter at its final reading (billed up to it) and put the new one
        on the same account, bus and address from its start reading."""
        old = self._meter(property_id, old_meter_id)
        require_id(new_meter_id, "new_meter_id")
        at = (read_at or self.clock()).isoformat()
        result = meter_service.replace_meter(property_id, old_meter_id, new_meter_id,
                                             {"read_at": at, "total": final_total},
                                             {"read_at": at, "total": initial_total}, who.actor,
                                             ingest=self._ingest())
        self._record(who, "meter_replaced", property_id, old_meter_id, meter_snapshot(old),
                     {"new_meter_id": new_meter_id, "final_total": str(final_total),
                      "initial_total": str(initial_total), "final_reading": result["final_reading"],
                      "meter_balance_moved": result["meter_balance_moved"]})
        return result

    def _ingest(self):
        from core.services.ingest import Ingest

        ingest = Ingest(clock=self.clock)
        ingest.control = self.control
        return ingest

    def close_account(self, who: Who, property_id: str, account_id: str, method: object,
                      receipt_no: object = "") -> dict:
        """Settle and close: every meter of the account is tripped (held open: the room is
        vacated), the balance is refunded in cash (a receipt) or to WeChat (over the
        account's paid recharges, newest first), and the account is closed once its balance
        is zero with no refund still processing. A WeChat refund WeChat has not confirmed
        yet leaves it "closing": the admin closes it again once the refund settles."""
        account = self._open_account(property_id, account_id)
        if method not in ("cash", "wechat"):
            raise ValidationError("退款方式必须是微信原路退回或现金", code="method_invalid", field="method")
        before = self._state(account_id)
        balance = before.balance
        if balance < 0:
            raise Conflict(f"账户欠费 {yuan(-balance)} 元，请先收取欠款后再销户", code="account_in_arrears")
        orders = self.refundable_orders(property_id, account_id) if method == "wechat" and balance > 0 else []
        if method == "wechat" and balance > 0 and sum(n for _, n in orders) < balance:
            raise Conflict(f"可原路退回的微信充值共 {yuan(sum(n for _, n in orders))} 元，不足以退还余额 "
                           f"{yuan(balance)} 元，请改用现金退款", code="wechat_refundable_short")
        if method == "cash" and balance > 0:
            receipt_no = self._claim_receipt(who, property_id, account_id, receipt_no, balance, "cash_refund")
        tripped = []
        for m in dstore.meters_of_account(account_id):
            if not m.retired:
                tripped.append(self.control.manual_relay(property_id, m.meter_id, policy.TRIP, "销户",
                                                         who.actor).command_id)
        refunds: list[dict] = []
        if balance > 0 and method == "cash":
            self.payments.counter_refund(property_id, account_id, balance, receipt_no, who.actor)
            refunds.append({"method": "cash", "receipt_no": receipt_no, "amount": balance})
        elif balance > 0:
            left = balance
            for order, can in orders:
                if left <= 0:
                    break
                part = min(can, left)
                r = self.payments.refund(property_id, order.out_trade_no, part, "销户退款", who.actor)
                refunds.append({"method": "wechat", "out_refund_no": r.out_refund_no, "amount": part,
                                "status": r.status})
                left -= part
        closed = self._close_if_settled(account_id)
        after = {**snapshot(self._state(account_id)), "refunds": refunds, "tripped": tripped}
        self._record(who, "account_closed" if closed else "account_closing", property_id, account_id,
                     snapshot(before), after)
        return {"account_id": account.account_id, "closed": closed, "refunds": refunds, "tripped": tripped,
                "balance": after["balance"]}

    # -- move-out settlement, transfer, move-in (core/services/move_out.py) -------------------

    @property
    def move_out(self):
        """The move-out settlement (退租结算), transfer (过户) and move-in (新装) service on
        these room actions (it closes through _close_if_settled, refunds like close_account)."""
        found = self.__dict__.get("_move_out")
        if found is None:
            from core.services.move_out import MoveOut

            found = self.__dict__["_move_out"] = MoveOut(self)
        return found

    def settle(self, who: Who, property_id: str, account_id: str, **kw) -> dict:
        """退租结算 (or 过户 with transfer=): core/services/move_out.py MoveOut.settle."""
        return self.move_out.settle(who, property_id, account_id, **kw)

    def _close_if_settled(self, account_id: str) -> bool:
        state = self._state(account_id)
        if state.balance != 0:
            return False
        for o in payments_store.orders_of_account(account_id):
            if o.refunded and any(r.status == REFUND_PROCESSING for r in payments_store.refunds_of(o.out_trade_no)):
                return False
        dstore.set_account_settings(account_id, status=ACCOUNT_CLOSED)
        return True

    # -- the panel's reads -----------------------------------------------------------------

    def panel(self, property_id: str, building_id: str, room_id: str, account_id: str | None = None) -> dict:
        """What the room's action panel shows: the room, its open accounts, the chosen one
        (its control settings, tenant, meters, refundable WeChat recharges) and the
        property's sites (for a new meter)."""
        require_id(building_id, "building_id")
        require_id(room_id, "room_id")
        room = next((r for r in dstore.rooms(property_id, building_id) if r.room_id == room_id), None)
        if room is None:
            raise NotFound("房间不存在", code="room_not_found")
        accounts = sorted((a for a in dstore.accounts_of_building(property_id, building_id)
                           if a.room_id == room_id and a.status == ACCOUNT_OPEN and a.property_id == property_id),
                          key=lambda a: a.opened_at)
        account = next((a for a in accounts if a.account_id == account_id), accounts[0] if accounts else None)
        out: dict = {"room": room, "accounts": accounts, "account": account, "building_id": building_id,
                     "sites": dstore.sites_of_property(property_id)}
        if account is not None:
            state = self._state(account.account_id)
            meters = [m for m in dstore.meters_of_account(account.account_id) if not m.retired]
            out.update(state=snapshot(state), tenant=dstore.get_tenant(account.tenant_id),
                       meters=sorted(meters, key=lambda m: m.meter_id),
                       orders=self.refundable_orders(property_id, account.account_id),
                       manual={m.meter_id for m in self.control.meters.load_meters(tuple(x.meter_id for x in meters))
                               if m.manual_open} if meters else set())
        return out
