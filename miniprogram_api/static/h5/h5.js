/* The tenant's H5 pages: what every page shares (docs/h5.md).
   FK.api(method, path, body): the tenant JSON API (/api/v1) with the bearer token; a 401
   refreshes the session once (one refresh at a time: refresh tokens rotate and a spent one
   revokes the session) and otherwise sends the browser to WeChat's login.
   Tokens: the access token in sessionStorage (this tab), the refresh token in localStorage. */
(function () {
  "use strict";
  var body = document.body;
  var API = body.dataset.api;
  var BASE = body.dataset.base; // "/h5/"
  var K_ACCESS = "fk.h5.token", K_REFRESH = "fk.h5.refresh", K_ACCOUNT = "fk.h5.account";
  var FK = window.FK = {base: BASE};

  function store(kind) {
    try { return window[kind]; } catch (e) { return null; }
  }

  FK.session = {
    access: function () { var s = store("sessionStorage"); return s && s.getItem(K_ACCESS); },
    refreshToken: function () { var s = store("localStorage"); return s && s.getItem(K_REFRESH); },
    save: function (t) {
      store("sessionStorage").setItem(K_ACCESS, t.token);
      if (t.refresh_token) store("localStorage").setItem(K_REFRESH, t.refresh_token);
    },
    clear: function () {
      var s = store("sessionStorage"), l = store("localStorage");
      if (s) s.removeItem(K_ACCESS);
      if (l) l.removeItem(K_REFRESH);
    }
  };

  function ApiError(status, code, message) {
    this.status = status; this.code = code; this.message = message;
  }
  ApiError.prototype = Object.create(Error.prototype);
  FK.ApiError = ApiError;

  var leaving = false;
  FK.login = function () {
    if (leaving) return;
    leaving = true;
    location.replace(BASE + "login?next=" + encodeURIComponent(location.pathname + location.search));
  };
  function toLogin() {
    FK.session.clear();
    FK.login();
    var e = new ApiError(401, "login_required", "请先登录");
    e.leaving = true;
    return e;
  }

  var refreshing = null;
  function refresh() {
    if (!refreshing) {
      var token = FK.session.refreshToken();
      refreshing = (token ? fetch(API + "/token/refresh", {
        method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({refresh_token: token})
      }).then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); }) : Promise.reject(401))
        .then(function (t) { FK.session.save(t); return t.token; })
        .finally(function () { refreshing = null; });
    }
    return refreshing;
  }

  FK.api = async function (method, path, data, retried) {
    var token = FK.session.access();
    if (!token) {
      try { token = await refresh(); } catch (e) { throw toLogin(); }
    }
    var headers = {"Authorization": "Bearer " + token, "Accept": "application/json"};
    if (data !== undefined) headers["Content-Type"] = "application/json";
    var r;
    try {
      r = await fetch(API + path, {method: method, headers: headers,
                                   body: data === undefined ? undefined : JSON.stringify(data)});
    } catch (e) {
      throw new ApiError(0, "network", "网络异常，请检查网络后重试");
    }
    if (r.status === 401) {
      if (retried) throw toLogin();
      store("sessionStorage").removeItem(K_ACCESS);
      try { await refresh(); } catch (e) { throw toLogin(); }
      return FK.api(method, path, data, true);
    }
    if (r.status === 204) return null;
    var out = null;
    try { out = await r.json(); } catch (e) { out = null; }
    if (!r.ok) {
      var err = (out && out.error) || {};
      throw new ApiError(r.status, err.code || "http_" + r.status, err.message || "服务暂时不可用，请稍后重试");
    }
    return out;
  };

  FK.logout = async function () {
    try { await FK.api("POST", "/logout"); } catch (e) { /* ending it locally is enough */ }
    FK.session.clear();
    location.replace(BASE + "signed-out");
  };

  /* ---- formatting */

  FK.yuan = function (fen) {
    var n = Math.round(Number(fen) || 0), sign = n < 0 ? "-" : "", a = Math.abs(n);
    var cents = String(a % 100);
    return sign + Math.floor(a / 100).toLocaleString("en-US") + "." + (cents.length < 2 ? "0" + cents : cents);
  };
  /* "50" / "50.5" / "50.05" (yuan, as typed) -> fen; null when it is not an amount */
  FK.parseYuan = function (text) {
    var m = /^\s*(\d{1,7})(?:\.(\d{1,2}))?\s*$/.exec(text || "");
    if (!m) return null;
    return Number(m[1]) * 100 + Number(((m[2] || "") + "00").slice(0, 2));
  };
  var timeFmt = new Intl.DateTimeFormat("zh-CN", {timeZone: "Asia/Shanghai", month: "numeric", day: "numeric",
                                                  hour: "2-digit", minute: "2-digit", hour12: false});
  var fullFmt = new Intl.DateTimeFormat("zh-CN", {timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit",
                                                  day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
                                                  hour12: false});
  FK.time = function (iso, full) {
    if (!iso) return "";
    var d = new Date(iso);
    return isNaN(d) ? String(iso) : (full ? fullFmt : timeFmt).format(d);
  };
  FK.today = function () { /* YYYY-MM-DD in Beijing time */
    var parts = new Intl.DateTimeFormat("en-CA", {timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit",
                                                  day: "2-digit"}).format(new Date());
    return parts;
  };

  /* ---- DOM */

  /* el("li", {class: "x", dataset: {k: v}}, child, "text", ...) -- text is never parsed as HTML */
  FK.el = function (tag, attrs) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "dataset") Object.keys(v).forEach(function (d) { e.dataset[d] = v[d]; });
      else if (k === "text") e.textContent = v;
      else if (k.slice(0, 2) === "on") e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    });
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined || c === false) continue;
      e.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    }
    return e;
  };
  FK.$ = function (sel) { return document.querySelector(sel); };

  var toastTimer = null;
  FK.toast = function (text, kind) {
    var t = document.getElementById("toast");
    t.textContent = text;
    t.className = "toast" + (kind ? " " + kind : "");
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { t.hidden = true; }, 2600);
  };

  /* an error where the page's content goes (a login redirect shows nothing) */
  FK.fail = function (where, err) {
    if (err && err.leaving) return;
    var msg = (err && err.message) || "出错了，请稍后重试";
    if (!(err instanceof ApiError)) console.error(err);
    var box = typeof where === "string" ? FK.$(where) : where;
    if (box) {
      box.replaceChildren(FK.el("div", {"class": "card empty", role: "alert"}, msg,
                                FK.el("div", {}, FK.el("button", {"class": "btn btn-ghost", type: "button",
                                                                  onclick: function () { location.reload(); }}, "重试"))));
      box.hidden = false;
    } else {
      FK.toast(msg, "bad");
    }
  };

  /* ---- the account a page is about */

  FK.accountId = function () {
    var q = new URLSearchParams(location.search).get("account");
    if (q) return q;
    var l = store("localStorage");
    return l && l.getItem(K_ACCOUNT);
  };
  FK.remember = function (accountId) {
    var l = store("localStorage");
    if (l && accountId) l.setItem(K_ACCOUNT, accountId);
  };
  FK.href = function (page, accountId) {
    return BASE + (page === "home" ? "" : page) + (accountId ? "?account=" + encodeURIComponent(accountId) : "");
  };

  /* {account, accounts} from GET /accounts (one request); null (and the bind page) when none */
  FK.loadAccount = async function () {
    var res = await FK.api("GET", "/accounts");
    var accounts = (res && res.accounts) || [];
    if (!accounts.length) return {account: null, accounts: accounts};
    var want = FK.accountId();
    var account = accounts.filter(function (a) { return a.account_id === want; })[0] || accounts[0];
    FK.remember(account.account_id);
    document.querySelectorAll(".tabbar a[data-tab]").forEach(function (a) {
      a.href = FK.href(a.dataset.tab, account.account_id);
    });
    return {account: account, accounts: accounts};
  };

  FK.place = function (a) {
    return [a.property_name, a.room_name].filter(Boolean).join(" · ") || a.name || a.account_id;
  };

  /* the small header of a sub-page: which account, and a switcher when there are several */
  FK.who = function (box, ctx, page) {
    box.replaceChildren();
    box.appendChild(FK.el("div", {}, FK.el("strong", {}, FK.place(ctx.account))));
    if (ctx.accounts.length > 1) {
      var sel = FK.el("select", {"aria-label": "切换账户", id: "account-switch",
                                 onchange: function () { location.assign(FK.href(page, sel.value)); }});
      ctx.accounts.forEach(function (a) {
        sel.appendChild(FK.el("option", {value: a.account_id, selected: a.account_id === ctx.account.account_id},
                              FK.place(a)));
      });
      box.appendChild(sel);
    }
  };

  /* a page that needs an account: runs fn(ctx) or shows the way to bind one */
  FK.withAccount = function (page, fn) {
    var who = FK.$("#who");
    FK.loadAccount().then(function (ctx) {
      if (!ctx.account) {
        FK.$("#main").replaceChildren(FK.noAccounts());
        return;
      }
      if (who) FK.who(who, ctx, page);
      return fn(ctx);
    }).catch(function (e) { FK.fail("#main", e); });
  };

  FK.noAccounts = function () {
    return FK.el("section", {"class": "card empty", id: "no-accounts"},
                 FK.el("p", {}, "还没有绑定账户"),
                 FK.el("p", {"class": "muted"}, "请向物业管理处索取绑定码，绑定后即可查看余额、充值和用量。"),
                 FK.el("a", {"class": "btn btn-primary", href: BASE + "bind"}, "绑定账户"));
  };

  FK.supplyClass = function (state) { return state === "cut" ? "cut" : state === "pending" ? "pending" : "on"; };
})();
