// The tenant API (/api/v1, docs/tenant-api.md) as the mini-program's pages use it: an
// endpoint by its name in endpoints.js, the bearer token, one refresh on a 401, error toasts.
const http = require('./http')
const auth = require('./auth')
const ENDPOINTS = require('./endpoints')

function query(params) {
  const parts = Object.keys(params || {})
    .filter(k => params[k] !== undefined && params[k] !== null && params[k] !== '')
    .map(k => `${encodeURIComponent(k)}=${encodeURIComponent(params[k])}`)
  return parts.length ? `?${parts.join('&')}` : ''
}

function pathOf(name, params) {
  const ep = ENDPOINTS[name]
  if (!ep) throw new Error(`unknown endpoint ${name}`)
  return ep.path.replace(/:(\w+)/g, (_, key) => {
    if (params[key] === undefined || params[key] === null || params[key] === '') {
      throw new Error(`endpoint ${name} needs ${key}`)
    }
    return encodeURIComponent(params[key])
  })
}

function toast(message) {
  wx.showToast({ title: message, icon: 'none', duration: 2500 })
}

// call(name, {params, query, data, silent}) -> the answer's body.
// A 401 is answered once by a token refresh (or a new wx.login()) and the request retried;
// an error answer is shown as a toast with the API's Chinese message (unless silent) and
// rejected as an Error carrying status, code and message.
async function call(name, options = {}) {
  const ep = ENDPOINTS[name]
  const path = pathOf(name, options.params || {}) + query(options.query)
  try {
    let token = await auth.ensureToken()
    let res = await http.send(ep.method, path, options.data, token)
    if (res.statusCode === 401) {
      token = await auth.renew(token)
      res = await http.send(ep.method, path, options.data, token)
    }
    if (http.ok(res)) return res.data
    throw http.errorOf(res)
  } catch (e) {
    if (!options.silent) toast(e.code && e.message ? e.message : http.SERVER_ERROR)
    throw e
  }
}

module.exports = { call, ENDPOINTS, toast, pathOf, query }
