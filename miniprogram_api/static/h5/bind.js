/* 绑定账户, two ways (docs/h5.md):
   - 绑定码: a binding code from the property office (or the QR text) -> POST /bindings;
   - 手机号验证: room + the phone the tenant registered -> POST /bindings/phone-code (an SMS code,
     then 60 s before another) -> POST /bindings/phone with the code.
   ?code= fills the binding code; ?property= (the property's own link) the property, whose field
   is then hidden; ?tab=phone opens the second tab. */
(function () {
  "use strict";
  var el = FK.el, $ = FK.$;
  if (!FK.session.access() && !FK.session.refreshToken()) { FK.login(); return; } /* log in first */
  var params = new URLSearchParams(location.search);

  function done(b) {
    FK.remember(b.account_id);
    $(".bind-tabs").hidden = true;
    ["#code-panel", "#phone-panel"].forEach(function (s) { $(s).hidden = true; });
    var box = $("#bind-done");
    box.replaceChildren(
      el("p", {"class": "badge ok"}, "绑定成功"),
      el("p", {"class": "big", id: "bound-place"}, [b.property_name, b.room_name].filter(Boolean).join(" · ")),
      el("p", {"class": "muted"}, b.name || ""),
      el("a", {"class": "btn btn-primary btn-block", id: "bound-home", href: FK.href("home", b.account_id)}, "查看账户"));
    box.hidden = false;
  }

  /* ---- tabs */
  var tabs = Array.prototype.slice.call(document.querySelectorAll(".bind-tabs [role=tab]"));
  function show(tab) {
    tabs.forEach(function (t) {
      var on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      $("#" + t.dataset.tabFor).hidden = !on;
    });
  }
  tabs.forEach(function (t) { t.addEventListener("click", function () { show(t); }); });
  if (params.get("tab") === "phone") show($("#tab-phone"));

  /* ---- a binding code */
  var form = $("#bind-form"), input = $("#bind-code"), error = $("#bind-error"), submit = $("#bind-submit");
  if (params.get("code")) input.value = params.get("code");

  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    error.textContent = "";
    var code = input.value.trim();
    if (!code) { error.textContent = "请输入绑定码"; input.focus(); return; }
    submit.disabled = true;
    submit.textContent = "正在绑定…";
    try {
      done(await FK.api("POST", "/bindings", {code: code}));
    } catch (e) {
      if (e.leaving) return;
      error.textContent = e.message;
      submit.disabled = false;
      submit.textContent = "绑定";
    }
  });

  /* ---- phone + room + SMS code */
  var pForm = $("#phone-form"), pProperty = $("#phone-property"), pRoom = $("#phone-room"), pPhone = $("#phone-number"),
      pCode = $("#phone-code"), pSend = $("#phone-send"), pNote = $("#phone-note"), pError = $("#phone-error"),
      pSubmit = $("#phone-submit");
  if (params.get("property")) {
    pProperty.value = params.get("property");
    $("#phone-property-field").hidden = true;
  }
  var countdown = null;

  function digits(text) { return text.replace(/[\s\-()]/g, "").replace(/^\+?86(?=1\d{10}$)/, ""); }

  function place() {
    var property = pProperty.value.trim(), room = pRoom.value.trim(), phone = digits(pPhone.value.trim());
    if (!property) { pError.textContent = "请填写物业编号"; pProperty.focus(); return null; }
    if (!room) { pError.textContent = "请填写房间号"; pRoom.focus(); return null; }
    if (!/^1[3-9]\d{9}$/.test(phone)) { pError.textContent = "请填写 11 位手机号"; pPhone.focus(); return null; }
    return {property_id: property, room: room, phone: phone};
  }

  function wait(seconds) {
    clearInterval(countdown);
    var left = seconds;
    pSend.disabled = true;
    pSend.textContent = left + " 秒后重新获取";
    countdown = setInterval(function () {
      left -= 1;
      if (left <= 0) {
        clearInterval(countdown);
        pSend.disabled = false;
        pSend.textContent = "重新获取";
      } else {
        pSend.textContent = left + " 秒后重新获取";
      }
    }, 1000);
  }

  pSend.addEventListener("click", async function () {
    pError.textContent = "";
    var body = place();
    if (!body) return;
    pSend.disabled = true;
    try {
      var r = await FK.api("POST", "/bindings/phone-code", body);
      pNote.textContent = r.message;
      pNote.hidden = false;
      wait(r.resend_after || 60);
      pCode.focus();
    } catch (e) {
      if (e.leaving) return;
      pError.textContent = e.message;
      var m = e.code === "phone_code_too_soon" && /(\d+) 秒/.exec(e.message);
      if (m) wait(parseInt(m[1], 10)); else pSend.disabled = false;
    }
  });

  pForm.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    pError.textContent = "";
    var body = place();
    if (!body) return;
    var code = pCode.value.replace(/\s/g, "");
    if (!/^\d{6}$/.test(code)) { pError.textContent = "请输入短信中的 6 位验证码"; pCode.focus(); return; }
    body.code = code;
    pSubmit.disabled = true;
    pSubmit.textContent = "正在验证…";
    try {
      var b = await FK.api("POST", "/bindings/phone", body);
      clearInterval(countdown);
      done(b);
    } catch (e) {
      if (e.leaving) return;
      pError.textContent = e.message;
      pSubmit.disabled = false;
      pSubmit.textContent = "验证并绑定";
    }
  });
})();
