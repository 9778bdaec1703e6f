// A stand-in for the `wx` object: the client's boundary. wx.request is answered by a
// server function built to the tenant API's contract shapes (docs/tenant-api.md); every
// request, toast, payment, scan and navigation is recorded for the tests to assert.
const config = require('../../config')

const FAIL = Symbol('network failure')

function createWx() {
  const storage = new Map()
  let server = () => ({ statusCode: 404, data: { error: { code: 'not_found', message: '接口不存在' } } })
  let codes = 0
  const wx = {
    requests: [],
    toasts: [],
    navigations: [],
    payments: [],
    storage,
    scanResult: null,
    paymentOutcome: { ok: true },

    // server(req) -> {statusCode, data} (or FAIL); req = {method, path, query, header, data}
    serve(fn) { server = fn },

    request(opts) {
      const [path, qs] = opts.url.slice(config.apiBase.length).split('?')
      const req = {
        url: opts.url,
        method: opts.method || 'GET',
        path,
        query: Object.fromEntries(new URLSearchParams(qs || '')),
        header: Object.assign({}, opts.header),
        data: opts.data === undefined ? undefined : JSON.parse(JSON.stringify(opts.data))
      }
      wx.requests.push(req)
      const res = server(req)
      Promise.resolve().then(() => {
        if (res === FAIL) opts.fail({ errMsg: 'request:fail timeout' })
        else opts.success({ statusCode: res.statusCode, data: res.data, header: {} })
      })
      return { abort() {} }
    },

    login(opts) {
      codes += 1
      const code = `wx-code-${codes}`
      Promise.resolve().then(() => opts.success({ code, errMsg: 'login:ok' }))
    },

    getStorageSync: key => (storage.has(key) ? storage.get(key) : ''),
    setStorageSync: (key, value) => { storage.set(key, value) },
    removeStorageSync: key => { storage.delete(key) },

    showToast(opts) { wx.toasts.push(opts) },
    stopPullDownRefresh: jest.fn(),
    navigateTo(opts) { wx.navigations.push({ kind: 'navigateTo', url: opts.url }) },
    reLaunch(opts) { wx.navigations.push({ kind: 'reLaunch', url: opts.url }) },

    scanCode(opts) {
      wx.scans = (wx.scans || 0) + 1
      Promise.resolve().then(() => (wx.scanResult === null
        ? opts.fail({ errMsg: 'scanCode:fail cancel' })
        : opts.success({ result: wx.scanResult, scanType: 'QR_CODE', errMsg: 'scanCode:ok' })))
    },

    // wx.requestSubscribeMessage: recorded; answers subscribeOutcome ({ok, results: {tmplId: 'accept'|...}})
    subscribePrompts: [],
    subscribeOutcome: { ok: true, results: {} },
    requestSubscribeMessage(opts) {
      wx.subscribePrompts.push(opts.tmplIds.slice())
      Promise.resolve().then(() => (wx.subscribeOutcome.ok
        ? opts.success(Object.assign({ errMsg: 'requestSubscribeMessage:ok' }, wx.subscribeOutcome.results))
        : opts.fail({ errMsg: 'requestSubscribeMessage:fail cancel', errCode: 20004 })))
    },

    requestPayment(opts) {
      wx.payments.push(opts)
      Promise.resolve().then(() => (wx.paymentOutcome.ok
        ? opts.success({ errMsg: 'requestPayment:ok' })
        : opts.fail({ errMsg: wx.paymentOutcome.errMsg })))
    }
  }
  return wx
}

// a JSON answer, and the error envelope {"error": {"code", "message"}}
const json = (statusCode, data) => ({ statusCode, data })
const error = (statusCode, code, message) => ({ statusCode, data: { error: { code, message } } })

// a server from a table "METHOD /path" -> answer or function(req) -> answer
function routes(table) {
  return req => {
    const r = table[`${req.method} ${req.path}`]
    if (!r) return error(404, 'not_found', '接口不存在')
    return typeof r === 'function' ? r(req) : r
  }
}

module.exports = { createWx, json, error, routes, FAIL }
