// utils/api.js + utils/auth.js against a wx.request stand-in answering to the contract:
// login, bearer token, one refresh on a 401 (then wx.login again), error toasts.
const { createWx, json, error, routes, FAIL } = require('./helpers/wx')

let api
beforeEach(() => {
  global.wx = createWx()
  jest.isolateModules(() => { api = require('../utils/api') })
})

const LOGIN = { token: 'tok-A', token_type: 'Bearer', expires_in: 900, refresh_token: 'ref-A', refresh_expires_in: 2592000, bound: true, properties: ['p1'] }
const ACCOUNTS = { accounts: [] }
const BASE = 'https://api.example.com/api/v1'

test('first use logs in with a wx.login code, keeps both tokens and sends the bearer token', async () => {
  wx.serve(routes({
    'POST /login': json(200, LOGIN),
    'GET /accounts': req => (req.header.Authorization === 'Bearer tok-A' ? json(200, ACCOUNTS) : error(401, 'unauthorized', '请先登录'))
  }))
  await expect(api.call('accounts')).resolves.toEqual(ACCOUNTS)
  expect(wx.requests.map(r => [r.method, r.url])).toEqual([['POST', `${BASE}/login`], ['GET', `${BASE}/accounts`]])
  expect(wx.requests[0].data).toEqual({ code: 'wx-code-1' })
  expect(wx.requests[0].header.Authorization).toBeUndefined()
  expect(wx.storage.get('feikong.token')).toBe('tok-A')
  expect(wx.storage.get('feikong.refresh_token')).toBe('ref-A')
  expect(wx.toasts).toEqual([])
})

test('an expired access token is refreshed once with the refresh token and the request retried', async () => {
  wx.setStorageSync('feikong.token', 'tok-old')
  wx.setStorageSync('feikong.refresh_token', 'ref-old')
  wx.serve(routes({
    'GET /accounts': req => (req.header.Authorization === 'Bearer tok-new'
      ? json(200, ACCOUNTS) : error(401, 'token_expired', '登录已过期')),
    'POST /token/refresh': req => (req.data.refresh_token === 'ref-old'
      ? json(200, { token: 'tok-new', token_type: 'Bearer', expires_in: 900, refresh_token: 'ref-new', refresh_expires_in: 2592000 })
      : error(401, 'refresh_reused', '登录已失效'))
  }))
  await expect(api.call('accounts')).resolves.toEqual(ACCOUNTS)
  expect(wx.requests.map(r => `${r.method} ${r.path} ${r.header.Authorization || '-'}`)).toEqual([
    'GET /accounts Bearer tok-old',
    'POST /token/refresh -',
    'GET /accounts Bearer tok-new'
  ])
  expect(wx.requests[1].data).toEqual({ refresh_token: 'ref-old' })
  expect(wx.storage.get('feikong.token')).toBe('tok-new')
  expect(wx.storage.get('feikong.refresh_token')).toBe('ref-new')
  expect(wx.toasts).toEqual([])
})

test('a refused refresh token falls back to a new wx.login', async () => {
  wx.setStorageSync('feikong.token', 'tok-old')
  wx.setStorageSync('feikong.refresh_token', 'ref-spent')
  wx.serve(routes({
    'GET /accounts': req => (req.header.Authorization === 'Bearer tok-A' ? json(200, ACCOUNTS) : error(401, 'session_revoked', '登录已失效')),
    'POST /token/refresh': error(401, 'refresh_reused', '登录已失效，请重新登录'),
    'POST /login': json(200, LOGIN)
  }))
  await expect(api.call('accounts')).resolves.toEqual(ACCOUNTS)
  expect(wx.requests.map(r => `${r.method} ${r.path}`)).toEqual(['GET /accounts', 'POST /token/refresh', 'POST /login', 'GET /accounts'])
  expect(wx.requests[2].data).toEqual({ code: 'wx-code-1' })
  expect(wx.storage.get('feikong.refresh_token')).toBe('ref-A')
})

test('concurrent 401s spend the refresh token once (a second use would revoke the session)', async () => {
  wx.setStorageSync('feikong.token', 'tok-old')
  wx.setStorageSync('feikong.refresh_token', 'ref-old')
  wx.serve(routes({
    'GET /accounts': req => (req.header.Authorization === 'Bearer tok-new' ? json(200, ACCOUNTS) : error(401, 'token_expired', '登录已过期')),
    'GET /recharge-options': req => (req.header.Authorization === 'Bearer tok-new'
      ? json(200, { presets: [], min_fen: 100, max_fen: 500000 }) : error(401, 'token_expired', '登录已过期')),
    'POST /token/refresh': json(200, { token: 'tok-new', refresh_token: 'ref-new', token_type: 'Bearer', expires_in: 900, refresh_expires_in: 1 })
  }))
  await Promise.all([api.call('accounts'), api.call('rechargeOptions', { query: { account_id: 'a1' } })])
  expect(wx.requests.filter(r => r.path === '/token/refresh')).toHaveLength(1)
  expect(wx.requests.filter(r => r.header.Authorization === 'Bearer tok-new')).toHaveLength(2)
})

test('a 401 after the refresh is not retried again: its message is shown', async () => {
  wx.setStorageSync('feikong.token', 'tok-old')
  wx.setStorageSync('feikong.refresh_token', 'ref-old')
  wx.serve(routes({
    'GET /accounts': error(401, 'session_revoked', '登录已失效'),
    'POST /token/refresh': json(200, { token: 'tok-new', refresh_token: 'ref-new' })
  }))
  await expect(api.call('accounts')).rejects.toMatchObject({ status: 401, code: 'session_revoked' })
  expect(wx.requests.map(r => r.path)).toEqual(['/accounts', '/token/refresh', '/accounts'])
  expect(wx.toasts).toEqual([{ title: '登录已失效', icon: 'none', duration: 2500 }])
})

test('an error envelope is shown as a toast with its Chinese message and rejected with its code', async () => {
  wx.setStorageSync('feikong.token', 'tok-A')
  wx.serve(routes({ 'GET /accounts/acc-9/statement': error(404, 'account_not_found', '账户不存在') }))
  await expect(api.call('statement', { params: { account_id: 'acc-9' } }))
    .rejects.toMatchObject({ status: 404, code: 'account_not_found', message: '账户不存在' })
  expect(wx.toasts).toEqual([{ title: '账户不存在', icon: 'none', duration: 2500 }])
})

test('no answer and an answer without an envelope get generic Chinese messages; silent calls show nothing', async () => {
  wx.setStorageSync('feikong.token', 'tok-A')
  wx.serve(() => FAIL)
  await expect(api.call('accounts')).rejects.toMatchObject({ code: 'network_error' })
  wx.serve(() => json(502, '<html>Bad Gateway</html>'))
  await expect(api.call('accounts')).rejects.toMatchObject({ status: 502 })
  await expect(api.call('accounts', { silent: true })).rejects.toMatchObject({ status: 502 })
  expect(wx.toasts.map(t => t.title)).toEqual(['网络异常，请检查网络后重试', '服务繁忙，请稍后重试'])
})

test('path parameters and query values are URL-encoded; a missing path parameter is a bug, not a request', async () => {
  wx.setStorageSync('feikong.token', 'tok-A')
  wx.serve(() => json(200, {}))
  await api.call('statement', { params: { account_id: 'a/1' }, query: { cursor: 'x+y=', limit: 20, empty: null } })
  expect(wx.requests[0].url).toBe(`${BASE}/accounts/a%2F1/statement?cursor=x%2By%3D&limit=20`)
  await expect(api.call('statement', { params: {} })).rejects.toThrow('endpoint statement needs account_id')
  expect(wx.requests).toHaveLength(1)
})
