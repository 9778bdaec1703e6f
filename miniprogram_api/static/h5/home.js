/* 我的账户: balance, supply in words, forecast, alarm level; switch between accounts. */
(function () {
  "use strict";
  var el = FK.el;
  var ICONS = {
    usage: "M4 20V10h3v10zm6.5 0V4h3v16zM17 20v-7h3v7z",
    statement: "M6 2h9l5 5v15H6zm8 1.5V8h4.5zM8.5 12h7v1.6h-7zm0 3.5h7v1.6h-7z",
    orders: "M4 4h16v4H4zm0 6h16v10H4zm3 3v2h6v-2z",
    alarms: "M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6V11a7 7 0 0 0-5.5-6.84V3h-3v1.16A7 7 0 0 0 5 11v5l-2 2v1h18v-1z",
    members: "M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8zm7 1a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM1 20c0-3.3 3.6-6 8-6s8 2.7 8 6v1H1zm17 1v-1c0-1.7-.7-3.2-1.9-4.4 3.6.2 6.9 1.9 6.9 4.4v1z",
    bind: "M10.6 13.4a1 1 0 0 1 0-1.4l3.5-3.6a3 3 0 1 1 4.3 4.3l-2 2-1.4-1.4 2-2a1 1 0 1 0-1.5-1.5L12 13.4a1 1 0 0 1-1.4 0zM13.4 10.6a1 1 0 0 1 0 1.4l-3.5 3.6a3 3 0 1 1-4.3-4.3l2-2 1.4 1.4-2 2a1 1 0 1 0 1.5 1.5l3.5-3.6a1 1 0 0 1 1.4 0z"
  };

  function icon(d) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg"), path = document.createElementNS(ns, "path");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    path.setAttribute("d", d);
    svg.appendChild(path);
    return svg;
  }

  function alarmBadge(level) {
    if (!level) return null;
    var words = level >= 3 ? "余额严重不足" : level === 2 ? "余额不足" : "余额偏低";
    return el("span", {"class": "badge " + (level >= 2 ? "bad" : "warn"), id: "alarm-level", dataset: {level: level}},
              words);
  }

  function render(ctx) {
    var a = ctx.account, box = FK.$("#account");
    var supply = a.supply || {};
    var cls = FK.supplyClass(supply.state);
    var parts = [];
    if (ctx.accounts.length > 1) {
      var sw = el("nav", {"class": "switcher", "aria-label": "切换账户", id: "switcher"});
      ctx.accounts.forEach(function (x) {
        sw.appendChild(el("a", {href: FK.href("home", x.account_id), "class": x.account_id === a.account_id ? "current" : null,
                                "aria-current": x.account_id === a.account_id ? "true" : null}, FK.place(x)));
      });
      parts.push(sw);
    }
    var forecast = a.forecast && a.forecast.text;
    parts.push(el("section", {"class": "card balance-card", id: "balance-card"},
      el("div", {"class": "place"}, FK.place(a)),
      el("div", {"class": "label"}, "账户余额（元）"),
      el("div", {"class": "amount" + (a.balance_fen < 0 ? " negative" : ""), id: "balance",
                 dataset: {fen: a.balance_fen}}, el("small", {}, "¥"), FK.yuan(a.balance_fen)),
      forecast ? el("div", {"class": "forecast", id: "forecast"}, forecast) : null,
      el("div", {"class": "lines"},
         el("span", {}, "可透支 ¥" + FK.yuan(a.overdraft_limit_fen || 0)),
         a.restore_line_fen !== undefined && a.restore_line_fen !== null
           ? el("span", {}, "余额高于 ¥" + FK.yuan(a.restore_line_fen) + " 自动复电") : null),
      el("a", {"class": "btn btn-light btn-block", id: "go-recharge", href: FK.href("recharge", a.account_id)}, "充值")));
    parts.push(el("section", {"class": "card supply " + cls, id: "supply", dataset: {state: supply.state || ""}},
      el("span", {"class": "dot", "aria-hidden": "true"}),
      el("div", {},
         el("div", {}, el("span", {"class": "state"}, supply.text || "供电状态未知"), " ", alarmBadge(a.alarm_level)),
         supply.reason ? el("div", {"class": "reason"}, supply.reason) : null)));
    var links = el("nav", {"class": "card grid-links", "aria-label": "更多"});
    [["usage", "用量"], ["statement", "账单明细"], ["orders", "充值订单"], ["alarms", "提醒设置"], ["members", "室友"],
     ["bind", "绑定新账户"]].forEach(function (l) {
      links.appendChild(el("a", {href: l[0] === "bind" ? FK.base + "bind" : FK.href(l[0], a.account_id),
                                 dataset: {link: l[0]}}, icon(ICONS[l[0]]), l[1]));
    });
    parts.push(links);
    parts.push(el("button", {"class": "btn btn-ghost btn-block", type: "button", id: "logout",
                             onclick: FK.logout}, "退出登录"));
    box.replaceChildren.apply(box, parts);
    box.removeAttribute("aria-busy");
  }

  FK.loadAccount().then(function (ctx) {
    if (!ctx.account) {
      FK.$("#account").replaceChildren(FK.noAccounts());
      FK.$("#account").removeAttribute("aria-busy");
      return;
    }
    render(ctx);
  }).catch(function (e) { FK.fail("#account", e); });
})();
