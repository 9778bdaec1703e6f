/* 室友: who shares this account (GET /accounts/<id>/members); unbind me (DELETE /bindings/<id>). */
(function () {
  "use strict";
  var el = FK.el;
  var ctx = null;

  FK.$("#unbind").addEventListener("click", async function () {
    if (!window.confirm("确定解除你与「" + FK.place(ctx.account) + "」的绑定？")) return;
    try {
      await FK.api("DELETE", "/bindings/" + encodeURIComponent(ctx.account.account_id));
      try { localStorage.removeItem("fk.h5.account"); } catch (e) { /* private mode */ }
      location.replace(FK.base);
    } catch (e) {
      if (!e.leaving) FK.$("#unbind-error").textContent = e.message;
    }
  });

  FK.withAccount("members", async function (c) {
    ctx = c;
    var res = await FK.api("GET", "/accounts/" + encodeURIComponent(c.account.account_id) + "/members");
    var list = FK.$("#members");
    (res.members || []).forEach(function (m) {
      list.appendChild(el("li", {dataset: {member: m.member_id}},
        el("div", {"class": "main-col"},
           el("div", {"class": "title"}, m.display_name || "微信用户", m.is_me ? el("span", {"class": "badge"}, "我") : null),
           m.bound_at ? el("div", {"class": "sub"}, FK.time(m.bound_at) + " 绑定") : null)));
    });
    if (!list.children.length) list.after(el("p", {"class": "empty"}, "暂无成员"));
  });
})();
