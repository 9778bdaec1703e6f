/* Back from WeChat's web authorization: exchange the code for our tokens, then go on. */
(function () {
  "use strict";
  var box = FK.$("#login"), d = box.dataset;
  fetch(document.body.dataset.api + "/login/oauth", {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({code: d.code, state: d.state})
  }).then(function (r) {
    return r.json().catch(function () { return {}; }).then(function (j) { return {ok: r.ok, body: j}; });
  }).then(function (r) {
    if (!r.ok) throw new Error((r.body.error && r.body.error.message) || "登录失败，请重试");
    FK.session.save(r.body);
    var next = d.next || FK.base;
    location.replace(r.body.bound === false && next === FK.base ? FK.base + "bind" : next);
  }).catch(function (e) {
    FK.$("#login-status").textContent = "登录没有完成";
    FK.$("#login-error").textContent = e.message === "Failed to fetch" ? "网络异常，请检查网络后重试" : e.message;
    FK.$("#login-again").hidden = false;
  });
})();
