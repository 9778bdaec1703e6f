"""The notification pipeline (docs/notifications.md): routing recorded events to jobs, and
sending jobs through the channel port exactly once per delivery id.

- `Notify.route_image(image)`: an events-table stream record's new image -> the notice it
  calls for (core/domain/notifications.py) -> one job per (recipient, channel) following
  the tenants' preferences (channels, quiet hours, personal low-balance amount) or the
  property's admin recipients -> the `notifications` queue. Nothing in a money or control
  path calls this: the stream feeds it (functions/notify_route.py).
- `Notify.send_record(body, receipt)`: one job -> quiet hours (held invisible until they
  end) -> claim the delivery (conditional write) -> consent for a subscribe message ->
  `channels.send` -> sent | retrying (held invisible for the backoff, then redelivered) |
  failed (rejected, or out of attempts) | no_consent.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from aws_lambda_powertools import Logger

from core.domain import notifications as n
from core.domain.clock import Clock, utcnow
from core.domain.events import Event
from core.integrations import channels, queues
from core.services import observability
from core.store import bills as bills_store
from core.store import consents as consents_store
from core.store import deliveries as deliveries_store
from core.store import directory as directory_store
from core.store import events as events_store
from core.store import memberships as memberships_store
from core.store import tenant_money

log = Logger(service="feikong", child=True)


class Later(Exception):  # noqa: N818 (not an error: the job is to be delivered again later)
    """The job waits (backoff or quiet hours) `seconds`; its message is held invisible that long."""

    def __init__(self, seconds: float, why: str) -> None:
        super().__init__(f"{why}: again in {int(seconds)} s")
        self.seconds, self.why = seconds, why


def _admin_recipients(property_id: str, key: str) -> list[tuple[str, str]]:
    from core.store import notify_recipients  # engineer N3's store (console: property settings)

    return list(notify_recipients.recipients(property_id, key))


class Notify:
    """Repositories and the port are injected (defaults: the store modules, the channel
    port, the notifications queue); the clock too (quiet hours and backoff in tests)."""

    def __init__(self, clock: Clock = utcnow, *, deliveries=deliveries_store, consents=consents_store,
                 memberships=memberships_store, prefs: Callable = tenant_money.get_prefs, directory=directory_store,
                 recipients: Callable[[str, str], list[tuple[str, str]]] = _admin_recipients,
                 bill_head: Callable = bills_store.bill_head,
                 send: Callable[[channels.Outbound], channels.Result] | None = None,
                 enqueue: Callable[[list[str]], None] | None = None,
                 hold: Callable[[str, int], None] | None = None) -> None:
        self.clock = clock
        self.deliveries, self.consents, self.memberships, self.prefs = deliveries, consents, memberships, prefs
        self.directory, self.recipients = directory, recipients
        self.bill_head = bill_head
        self._send, self._enqueue, self._hold = send, enqueue, hold

    # -- routing -------------------------------------------------------------------------------

    def route_image(self, image: dict) -> int:
        """Route one new events-table item (a stream record's NewImage); the jobs queued."""
        return self.route(events_store.from_image(image))

    def route(self, e: Event) -> int:
        jobs = self.jobs_for(e)
        if jobs:
            bodies = [json.dumps(j, ensure_ascii=False, separators=(",", ":")) for j in jobs]
            if self._enqueue is not None:
                self._enqueue(bodies)
            else:
                queues.send_batch(queues.notifications_url(), bodies)
        return len(jobs)

    def jobs_for(self, e: Event) -> list[dict]:
        notice = n.notice_of(e)
        if notice is not None and notice.key in n.BILL_KINDS:  # the bill as it is now: one GetItem
            ref = n.bill_of(notice)
            notice = n.with_bill(notice, self.bill_head(*ref) if ref else None)  # paid meanwhile: None
        if notice is None:
            return []
        kind = notice.kind
        targets: list[tuple[str, str, list[str] | None]] = []  # (channel, to, quiet hours)
        if kind.audience == n.TENANT:
            if not notice.account_id:
                return []
            targets = self._tenant_targets(e, notice, kind)
        else:
            for channel, to in self.recipients(notice.property_id, notice.key):
                if channel in n.CHANNELS and to:
                    targets.append((channel, to, None))
        jobs, seen = [], set()
        for channel, to, quiet in targets:
            did = n.delivery_id(notice.dedupe, channel, to)
            if did in seen:
                continue
            seen.add(did)
            jobs.append({"d": did, "k": notice.key, "c": channel, "t": to, "r": notice.event_ref,
                         "p": notice.property_id, "a": notice.account_id, "v": notice.values,
                         "q": quiet if kind.quiet else None})
        return jobs

    def _tenant_targets(self, e: Event, notice: n.Notice, kind: n.Kind) -> list[tuple[str, str, list[str] | None]]:
        targets: list[tuple[str, str, list[str] | None]] = []
        want_sms, sms_quiet = kind.must_arrive, None
        balance = e.data.get("balance") if notice.key == "low_balance" else None
        for m in self.memberships.of_account(notice.account_id):
            p = self.prefs(m.openid, notice.account_id)
            if p is not None and balance is not None and p.low_balance_fen is not None \
                    and int(balance) >= p.low_balance_fen:
                continue  # this member asked to be reminded only below their own amount
            chosen = set(p.channels if p is not None else kind.channels)
            if kind.must_arrive:
                chosen |= {n.TEMPLATE, n.SMS}
            quiet = [p.quiet_start, p.quiet_end] if p is not None and p.quiet_start and p.quiet_end else None
            for channel in (n.SUBSCRIBE, n.TEMPLATE):
                if channel in chosen:
                    targets.append((channel, m.openid, quiet))
            if n.SMS in chosen:
                want_sms = True
                if p is not None and n.SMS in p.channels and sms_quiet is None:
                    sms_quiet = quiet  # the quiet hours of a member who asked for SMS
        if want_sms:
            phone = self._phone(notice.account_id)
            if phone:
                targets.append((n.SMS, phone, sms_quiet))
        return targets

    def _phone(self, account_id: str) -> str:
        account = self.directory.get_account(account_id)
        tenant = self.directory.get_tenant(account.tenant_id) if account and account.tenant_id else None
        return n.e164(tenant.phone or "") if tenant else ""

    # -- sending ----------------------------------------------------------------------------------

    def send_record(self, body: str, receipt_handle: str = "", queue_url: str = "") -> str:
        """Handle one job message. Returns what became of it; raises `Later` after holding
        the message invisible for its wait (the event source leaves it on the queue)."""
        try:
            return self.send_job(json.loads(body))
        except Later as wait:
            if receipt_handle:
                if self._hold is not None:
                    self._hold(receipt_handle, int(wait.seconds))
                else:
                    queues.hold(queue_url or queues.notifications_url(), receipt_handle, int(wait.seconds))
            raise

    def send_job(self, job: dict) -> str:
        now = self.clock()
        key, channel, to, did = job["k"], job["c"], job["t"], job["d"]
        kind = n.KINDS.get(key)
        if kind is None:
            log.error("notification job of an unknown kind dropped", kind=key)
            return "unknown_kind"
        common = {"property_id": job.get("p", ""), "account_id": job.get("a", ""), "event_ref": job.get("r", ""),
                  "kind": key, "channel": channel, "recipient": n.mask(channel, to)}
        if kind.quiet and job.get("q"):
            until = n.quiet_until(job["q"], now)
            if until is not None:
                if not self.deliveries.defer(did, **common, now=now, until=until):
                    return "duplicate"  # sent, failed or being sent already
                raise Later((until - now).total_seconds(), "quiet hours")
        mine, item = self.deliveries.claim(did, **common, now=now)
        if not mine:
            return "duplicate"
        attempts = int(item.get("attempts") or 1)
        took = False
        if channel == n.SUBSCRIBE and not item.get("consent"):
            if not self.consents.take(to, key):
                self.deliveries.finish(did, n.NO_CONSENT, now, detail="用户未授权订阅消息")
                observability.count("NotificationsNoConsent")
                return n.NO_CONSENT
            took = True
        r = n.render(key, job.get("v") or {})
        out = channels.Outbound(delivery_id=did, channel=channel, to=to, template_key=key, title=r.title,
                                body=r.body, fields=r.fields, link=kind.link)
        try:
            result = (self._send or channels.send)(out)
        except Exception as ex:  # the port should not raise; if it does, it is a transient failure
            log.exception("channel raised")
            result = channels.Result(channels.RETRY, f"{type(ex).__name__}: {ex}"[:300])
        now = self.clock()
        if result.outcome == channels.SENT:
            self.deliveries.finish(did, n.SENT, now, detail=result.detail, provider_id=result.provider_id)
            observability.count("NotificationsSent")
            return n.SENT
        if result.outcome == channels.REJECTED or attempts >= n.MAX_ATTEMPTS:
            detail = result.detail if result.outcome == channels.REJECTED else \
                f"{attempts} 次尝试均失败: {result.detail}"
            self.deliveries.finish(did, n.FAILED, now, detail=detail)
            observability.count("NotificationsFailed")
            log.warning("notification failed", delivery_id=did, channel=channel, detail=detail)
            return n.FAILED
        delay = n.retry_delay(attempts)
        self.deliveries.finish(did, n.RETRYING, now, detail=result.detail, next_at=now + delay,
                               consent=True if took else None)
        raise Later(delay.total_seconds(), "retry")


_notify: Notify | None = None


def service() -> Notify:
    global _notify
    if _notify is None:
        _notify = Notify()
    return _notify
