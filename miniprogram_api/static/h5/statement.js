/* 账单明细 (GET /accounts/<id>/statement) and 充值订单 (GET /accounts/<id>/orders): a list
   paged by cursor ("加载更多"); an order opens its receipt (GET /orders/<no>). */
(function () {
  "use strict";
  var el = FK.el;
  var page = document.body.dataset.page; // "statement" | "orders"
  var list = FK.$("#entries"), more = FK.$("#more"), empty = FK.$("#list-empty");
  var cursor = null, ctx = null;

  function signed(fen) { return (fen > 0 ? "+" : "") + FK.yuan(fen); }

  function entry(e) {
    return el("li", {dataset: {entry: e.entry_id, kind: e.kind}},
      el("div", {"class": "main-col"},
         el("div", {"class": "title"}, e.kind_text || e.kind),
         e.cause_text ? el("div", {"class": "sub"}, e.cause_text) : null,
         e.memo && (e.cause_text || "").indexOf(e.memo) < 0 ? el("div", {"class": "sub"}, e.memo) : null,
         e.payer && e.payer.display_name ? el("div", {"class": "sub"}, "付款人：" + (e.payer.is_me ? "我" : e.payer.display_name)) : null,
         el("div", {"class": "sub"}, FK.time(e.occurred_at || e.posted_at))),
      el("div", {"class": "num"},
         el("div", {"class": "amt" + (e.amount_fen > 0 ? " plus" : "")}, signed(e.amount_fen)),
         e.balance_after_fen !== undefined && e.balance_after_fen !== null
           ? el("span", {"class": "after"}, "余额 " + FK.yuan(e.balance_after_fen)) : null));
  }

  function statusBadge(o) {
    var cls = o.status === "PAID" || o.status === "paid" || o.status === "SUCCESS" ? "ok"
      : /REFUND|refund/.test(o.status) ? "warn" : /CLOSED|FAILED|closed|failed|expired/i.test(o.status) ? "muted" : "warn";
    return el("span", {"class": "badge " + cls}, o.status_text || o.status);
  }

  async function receipt(li, o) {
    var next = li.nextElementSibling;
    if (next && next.classList.contains("detail")) { next.remove(); return; }
    try {
      var r = await FK.api("GET", "/orders/" + encodeURIComponent(o.out_trade_no));
      var rows = [["订单号", r.out_trade_no], ["微信支付单号", r.transaction_id], ["房间", [r.property_name, r.room_name].filter(Boolean).join(" · ")],
                  ["金额", "¥" + FK.yuan(r.amount_fen)], ["下单时间", FK.time(r.created_at, true)],
                  ["支付时间", FK.time(r.paid_at, true)], ["付款人", r.payer && (r.payer.is_me ? "我" : r.payer.display_name)],
                  ["到账后余额", r.balance_after_fen !== undefined && r.balance_after_fen !== null ? "¥" + FK.yuan(r.balance_after_fen) : ""]];
      var dl = el("dl", {});
      rows.forEach(function (x) { if (x[1]) { dl.appendChild(el("dt", {}, x[0])); dl.appendChild(el("dd", {}, x[1])); } });
      li.after(el("li", {"class": "detail", dataset: {receipt: o.out_trade_no}}, dl));
    } catch (e) {
      if (!e.leaving) FK.toast(e.message, "bad");
    }
  }

  function order(o) {
    var li = el("li", {dataset: {order: o.out_trade_no, status: o.status}, role: "button", tabindex: "0"},
      el("div", {"class": "main-col"},
         el("div", {"class": "title"}, "充值 ", statusBadge(o)),
         o.payer ? el("div", {"class": "sub"}, "付款人：" + (o.payer.is_me ? "我" : o.payer.display_name)) : null,
         el("div", {"class": "sub"}, FK.time(o.paid_at || o.created_at))),
      el("div", {"class": "num"}, el("div", {"class": "amt"}, "¥" + FK.yuan(o.amount_fen))));
    li.addEventListener("click", function () { receipt(li, o); });
    return li;
  }

  async function next() {
    more.disabled = true;
    more.textContent = "加载中…";
    var path = "/accounts/" + encodeURIComponent(ctx.account.account_id) + "/" + page + "?limit=20" +
      (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
    try {
      var res = await FK.api("GET", path);
      var items = page === "orders" ? res.orders || [] : res.entries || [];
      items.forEach(function (x) { list.appendChild(page === "orders" ? order(x) : entry(x)); });
      cursor = res.next_cursor || null;
      empty.hidden = list.children.length > 0;
      more.hidden = !cursor;
    } catch (e) {
      if (!e.leaving) FK.toast(e.message, "bad");
    }
    more.disabled = false;
    more.textContent = "加载更多";
  }

  more.addEventListener("click", next);
  FK.withAccount(page, function (c) { ctx = c; return next(); });
})();
