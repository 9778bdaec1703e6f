/* 提醒设置: GET / PUT /accounts/<id>/alarm-preferences. */
(function () {
  "use strict";
  var form = FK.$("#prefs"), low = FK.$("#low-balance"), err = FK.$("#prefs-error"), save = FK.$("#save");
  var quietOn = FK.$("#quiet-on"), qs = FK.$("#quiet-start"), qe = FK.$("#quiet-end");
  var ctx = null;

  function path() { return "/accounts/" + encodeURIComponent(ctx.account.account_id) + "/alarm-preferences"; }

  function fill(p) {
    low.value = p.low_balance_fen === null || p.low_balance_fen === undefined ? "" : FK.yuan(p.low_balance_fen).replace(/,/g, "");
    form.querySelectorAll("input[name=channel]").forEach(function (c) { c.checked = (p.channels || []).indexOf(c.value) >= 0; });
    quietOn.checked = !!p.quiet_hours;
    if (p.quiet_hours) { qs.value = p.quiet_hours.start; qe.value = p.quiet_hours.end; }
    qs.disabled = qe.disabled = !quietOn.checked;
  }

  quietOn.addEventListener("change", function () { qs.disabled = qe.disabled = !quietOn.checked; });

  /* Official-account template messages need no per-message consent (unlike the mini-program's
     one-time subscribe messages): say where the reminders come from (docs/notifications.md). */
  var channelsBox = form.querySelector("fieldset.field");
  if (channelsBox && !FK.$("#oa-hint")) {
    channelsBox.appendChild(FK.el("p", {"class": "hint", id: "oa-hint"},
      "公众号消息由本公众号直接发送，无需逐次订阅；请保持关注本公众号，取消关注后将收不到提醒。" +
      "即将停电等重要提醒会同时通过公众号消息和短信发送。"));
  }

  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    err.textContent = "";
    var fen = null;
    if (low.value.trim()) {
      fen = FK.parseYuan(low.value);
      if (fen === null) { err.textContent = "提醒金额格式无效：请输入以元为单位的数字，最多两位小数"; return; }
    }
    var channels = [];
    form.querySelectorAll("input[name=channel]:checked").forEach(function (c) { channels.push(c.value); });
    var body = {low_balance_fen: fen, channels: channels,
                quiet_hours: quietOn.checked ? {start: qs.value, end: qe.value} : null};
    save.disabled = true;
    try {
      fill(await FK.api("PUT", path(), body));
      FK.toast("已保存");
    } catch (e) {
      if (!e.leaving) err.textContent = e.message;
    }
    save.disabled = false;
  });

  FK.withAccount("alarms", async function (c) {
    ctx = c;
    fill(await FK.api("GET", path()));
    form.hidden = false;
  });
})();
