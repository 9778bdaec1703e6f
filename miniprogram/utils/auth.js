// Tenant login (docs/tenant-auth.md): wx.login() code -> POST /login; the access token and
// the rotating refresh token are kept with wx.setStorageSync.
const http = require('./http')
const ENDPOINTS = require('./endpoints')

const TOKEN = 'feikong.token'
const REFRESH = 'feikong.refresh_token'

let loggingIn = null
let renewing = null

function token() {
  return wx.getStorageSync(TOKEN) || ''
}

function save(data) {
  wx.setStorageSync(TOKEN, data.token)
  wx.setStorageSync(REFRESH, data.refresh_token)
}

function clear() {
  wx.removeStorageSync(TOKEN)
  wx.removeStorageSync(REFRESH)
}

function wxLogin() {
  return new Promise((resolve, reject) => {
    wx.login({
      success: res => (res.code ? resolve(res.code) : reject(http.apiError(0, 'wx_login', '微信登录失败，请重试'))),
      fail: () => reject(http.apiError(0, 'wx_login', '微信登录失败，请重试'))
    })
  })
}

async function doLogin() {
  const code = await wxLogin()
  const res = await http.send(ENDPOINTS.login.method, ENDPOINTS.login.path, { code })
  if (!http.ok(res)) throw http.errorOf(res)
  save(res.data)
  return res.data
}

// log in with a fresh wx.login() code (one at a time: concurrent callers share it);
// answers the /login body ({token, refresh_token, bound, properties, ...})
function login() {
  if (!loggingIn) loggingIn = doLogin().finally(() => { loggingIn = null })
  return loggingIn
}

async function ensureToken() {
  return token() || (await login()).token
}

async function doRenew() {
  const refreshToken = wx.getStorageSync(REFRESH)
  if (refreshToken) {
    const res = await http.send(ENDPOINTS.refresh.method, ENDPOINTS.refresh.path, { refresh_token: refreshToken })
    if (http.ok(res)) {
      save(res.data)
      return res.data.token
    }
  }
  // no refresh token, or refused (expired, reused, revoked): wx.login() again, silently
  clear()
  return (await login()).token
}

// a request was refused with `stale`: answer a token to retry with. A refresh token is
// good once (a second use revokes the session), so concurrent 401s share one refresh and
// a request that failed with an already replaced token just takes the new one.
function renew(stale) {
  const current = token()
  if (current && current !== stale) return Promise.resolve(current)
  if (!renewing) renewing = doRenew().finally(() => { renewing = null })
  return renewing
}

module.exports = { login, ensureToken, renew, token, clear, TOKEN, REFRESH }
