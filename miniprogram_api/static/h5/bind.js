/* 绑定账户: a binding code from the property office (or the QR text) -> POST /bindings. */
(function () {
  "use strict";
  var el = FK.el;
  var form = FK.$("#bind-form"), input = FK.$("#bind-code"), error = FK.$("#bind-error"), submit = FK.$("#bind-submit");
  if (!FK.session.access() && !FK.session.refreshToken()) { FK.login(); return; } /* log in first */
  var given = new URLSearchParams(location.search).get("code");
  if (given) input.value = given;

  form.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    error.textContent = "";
    var code = input.value.trim();
    if (!code) { error.textContent = "请输入绑定码"; input.focus(); return; }
    submit.disabled = true;
    submit.textContent = "正在绑定…";
    try {
      var b = await FK.api("POST", "/bindings", {code: code});
      FK.remember(b.account_id);
      form.closest(".card").hidden = true;
      var done = FK.$("#bind-done");
      done.replaceChildren(
        el("p", {"class": "badge ok"}, "绑定成功"),
        el("p", {"class": "big", id: "bound-place"}, [b.property_name, b.room_name].filter(Boolean).join(" · ")),
        el("p", {"class": "muted"}, b.name || ""),
        el("a", {"class": "btn btn-primary btn-block", id: "bound-home", href: FK.href("home", b.account_id)}, "查看账户"));
      done.hidden = false;
    } catch (e) {
      if (e.leaving) return;
      error.textContent = e.message;
      submit.disabled = false;
      submit.textContent = "绑定";
    }
  });
})();
