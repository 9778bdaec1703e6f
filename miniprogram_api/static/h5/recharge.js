/* 充值: presets from GET /recharge-options or a custom amount -> POST /recharges -> WeChat's
   JSAPI payment (WeixinJSBridge getBrandWCPayRequest) -> the live "where my money is" chain
   from GET /recharges/<no>/progress, polled until power is back (or a clear message). */
(function () {
  "use strict";
  var el = FK.el;
  var POLL_MS = 1000, POLL_FOR_MS = 180000;
  var FINAL = {restored: "ok", not_needed: "ok", needs_local_confirm: "warn", site_offline: "warn", failed: "bad"};
  var STEP_TEXT = {paid: "支付成功", credited: "已到账", command_sent: "已发送复电指令", relay_closed: "电表已合闸"};
  var chosen = null, options = null, ctx = null;

  var presets = FK.$("#presets"), custom = FK.$("#custom-amount"), payBtn = FK.$("#pay"), payError = FK.$("#pay-error");

  function amount() {
    if (custom.value.trim()) return FK.parseYuan(custom.value);
    return chosen;
  }

  function refreshButton() {
    var fen = amount();
    payBtn.disabled = !custom.value.trim() && !chosen;
    payBtn.textContent = fen ? "微信支付 ¥" + FK.yuan(fen) : "微信支付";
  }

  function choose(fen) {
    chosen = fen;
    custom.value = "";
    presets.querySelectorAll("button").forEach(function (b) {
      b.setAttribute("aria-pressed", String(Number(b.dataset.fen) === fen));
    });
    payError.textContent = "";
    refreshButton();
  }

  custom.addEventListener("input", function () {
    chosen = null;
    presets.querySelectorAll("button").forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
    payError.textContent = "";
    refreshButton();
  });

  function check(fen) {
    if (fen === null) return "金额格式无效：请输入以元为单位的数字，最多两位小数";
    if (fen <= 0) return "充值金额必须大于 0 元";
    if (options && options.min_fen && fen < options.min_fen) return "单笔充值不能少于 " + FK.yuan(options.min_fen) + " 元";
    if (options && options.max_fen && fen > options.max_fen) return "单笔充值不能超过 " + FK.yuan(options.max_fen) + " 元";
    return null;
  }

  function bridge() { /* WeixinJSBridge, waiting a moment for WeChat (or the emulator's shim) to define it */
    if (window.WeixinJSBridge) return Promise.resolve(window.WeixinJSBridge);
    return new Promise(function (resolve, reject) {
      var t = setTimeout(function () { reject(new Error("请在微信中打开此页面完成支付")); }, 3000);
      document.addEventListener("WeixinJSBridgeReady", function () { clearTimeout(t); resolve(window.WeixinJSBridge); },
                                {once: true});
    });
  }

  function requestPayment(jsb, params) {
    return new Promise(function (resolve) {
      jsb.invoke("getBrandWCPayRequest", params, function (res) { resolve((res && res.err_msg) || ""); });
    });
  }

  payBtn.addEventListener("click", async function () {
    var fen = amount();
    var problem = check(fen);
    if (problem) { payError.textContent = problem; return; }
    payError.textContent = "";
    payBtn.disabled = true;
    payBtn.textContent = "正在下单…";
    try {
      var jsb = await bridge(); /* outside WeChat: no order is made */
      var order = await FK.api("POST", "/recharges", {account_id: ctx.account.account_id, amount: fen});
      payBtn.textContent = "等待支付…";
      var result = await requestPayment(jsb, order.pay_params);
      if (/:ok$/.test(result)) {
        follow(order.out_trade_no, fen);
        return;
      }
      payError.textContent = /:cancel$/.test(result) ? "已取消支付" : "支付未完成，请重试";
    } catch (e) {
      if (e.leaving) return;
      payError.textContent = e.message;
    }
    refreshButton();
  });

  function renderProgress(p) {
    var msg = FK.$("#progress-message");
    msg.textContent = p.message || "";
    msg.className = "progress-message " + (FINAL[p.state] || "");
    FK.$("#progress").dataset.state = p.state;
    var steps = FK.$("#steps"), list = p.steps || [], current = false;
    steps.replaceChildren.apply(steps, list.map(function (s) {
      var cls = s.done ? "done" : (!current ? (current = true, "current") : "");
      if (FINAL[p.state]) cls = s.done ? "done" : "";
      return el("li", {"class": cls, dataset: {step: s.key, done: String(!!s.done)}},
                s.text || STEP_TEXT[s.key] || s.key, s.at ? el("span", {"class": "at"}, FK.time(s.at, true)) : null);
    }));
  }

  function finish(p, fen) {
    var after = FK.$("#progress-after");
    if (p.balance_fen !== undefined && p.balance_fen !== null) {
      FK.$("#who-balance").textContent = "余额 ¥" + FK.yuan(p.balance_fen);
    }
    after.replaceChildren.apply(after, [
      p.balance_fen !== undefined && p.balance_fen !== null
        ? el("div", {id: "balance-after"}, "当前余额 ", el("strong", {}, "¥" + FK.yuan(p.balance_fen))) : null,
      el("a", {"class": "btn btn-primary btn-block", href: FK.href("home", ctx.account.account_id), id: "done-home"},
         "返回首页"),
      el("a", {"class": "btn btn-ghost btn-block", href: FK.href("orders", ctx.account.account_id)}, "查看订单")
    ].filter(Boolean));
    after.hidden = false;
  }

  function follow(no, fen) {
    FK.$("#order").hidden = true;
    var box = FK.$("#progress");
    box.hidden = false;
    box.dataset.order = no;
    renderProgress({state: "waiting_payment", message: "已支付 ¥" + FK.yuan(fen) + "，正在确认…",
                    steps: ["paid", "credited", "command_sent", "relay_closed"].map(function (k) {
                      return {key: k, text: STEP_TEXT[k], done: false};
                    })});
    var started = Date.now();
    (async function poll() {
      try {
        var p = await FK.api("GET", "/recharges/" + encodeURIComponent(no) + "/progress");
        renderProgress(p);
        if (FINAL[p.state]) { finish(p, fen); return; }
      } catch (e) {
        if (e.leaving) return;
        FK.$("#progress-message").textContent = e.message;
      }
      if (Date.now() - started > POLL_FOR_MS) {
        FK.$("#progress-message").textContent = "仍在处理中，可稍后在首页查看余额和供电状态";
        finish({}, fen);
        return;
      }
      setTimeout(poll, POLL_MS);
    })();
  }

  FK.withAccount("recharge", async function (c) {
    ctx = c;
    var a = c.account;
    FK.$("#who").appendChild(el("span", {id: "who-balance"}, "余额 ¥" + FK.yuan(a.balance_fen)));
    options = await FK.api("GET", "/recharge-options?account_id=" + encodeURIComponent(a.account_id));
    presets.replaceChildren.apply(presets, (options.presets || []).map(function (p) {
      return el("button", {type: "button", "aria-pressed": "false", dataset: {fen: p.amount_fen},
                           onclick: function () { choose(p.amount_fen); }}, el("small", {}, "¥"), FK.yuan(p.amount_fen).replace(/\.00$/, ""));
    }));
    if (options.min_fen && options.max_fen) {
      FK.$("#limits").textContent = "单笔 " + FK.yuan(options.min_fen) + " – " + FK.yuan(options.max_fen) + " 元";
    }
    if (a.supply && a.supply.state === "cut") {
      FK.$("#limits").textContent += "。当前已断电，充值到账后将自动复电";
    }
    FK.$("#order").hidden = false;
    refreshButton();
  });
})();
