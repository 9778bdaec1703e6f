// The only caller of wx.request: one HTTP exchange with the Feikong API, as a promise.
const config = require('../config')

const NETWORK_ERROR = '网络异常，请检查网络后重试'
const SERVER_ERROR = '服务繁忙，请稍后重试'

// resolves {statusCode, data} whatever the status; rejects only when no answer came back
function send(method, path, data, token) {
  const header = { 'Content-Type': 'application/json' }
  if (token) header.Authorization = `Bearer ${token}`
  return new Promise((resolve, reject) => {
    wx.request({
      url: config.apiBase + path,
      method,
      data,
      header,
      success: res => resolve({ statusCode: res.statusCode, data: res.data }),
      fail: err => reject(apiError(0, 'network_error', NETWORK_ERROR, err && err.errMsg))
    })
  })
}

function apiError(status, code, message, detail) {
  const e = new Error(message)
  e.status = status
  e.code = code
  if (detail) e.detail = detail
  return e
}

// an error answer -> Error with status, code and the API's Chinese message
function errorOf(res) {
  const body = res && res.data && res.data.error
  if (body && body.message) return apiError(res.statusCode, body.code || 'error', body.message)
  return apiError(res ? res.statusCode : 0, 'http_error', SERVER_ERROR)
}

function ok(res) {
  return res.statusCode >= 200 && res.statusCode < 300
}

module.exports = { send, errorOf, apiError, ok, NETWORK_ERROR, SERVER_ERROR }
