// Subscribe-message consents (docs/notifications.md "Channels"): the mini-program asks
// wx.requestSubscribeMessage after a payment succeeds and from a tap on the home page's
// low-balance bar, with the template ids GET /subscriptions names, and posts WeChat's
// answers back per catalog key (POST /subscriptions).
const { createWx, json, error, routes } = require('./helpers/wx')
const { mountPage, textOf, find, tap } = require('./helpers/page')
const subscribe = require('../utils/subscribe')

const STATUS = {
  templates: [
    { template_key: 'low_balance', template_id: 'SUB-LOW', title: '余额不足提醒' },
    { template_key: 'cut_imminent', template_id: 'SUB-CUT', title: '即将停电提醒' },
    { template_key: 'supply_cut', template_id: 'SUB-OFF', title: '已停止供电' },
    { template_key: 'payment_received', template_id: 'SUB-PAY', title: '充值到账' },
    { template_key: 'supply_restored', template_id: 'SUB-ON', title: '已恢复供电' }
  ],
  prompts: { after_payment: ['SUB-PAY', 'SUB-ON', 'SUB-LOW'], low_balance: ['SUB-LOW', 'SUB-CUT', 'SUB-OFF'] },
  counts: {}
}
const posted = () => wx.requests.filter(r => r.method === 'POST' && r.path === '/subscriptions').map(r => r.data)

const ACCOUNT = {
  account_id: 'acc-1', property_id: 'p1', property_name: '阳光公寓', room_name: 'B-201', name: '张三',
  balance_fen: 12345, balance: '123.45', supply: { state: 'on', text: '正常供电', reason: '' },
  alarm_level: 0, overdraft_limit_fen: 0, restore_line_fen: 0,
  forecast: { days: 12, daily_cost_fen: 1000, text: '余额约可用 12 天' }
}
const LOW = { ...ACCOUNT, account_id: 'acc-2', balance_fen: 1500, balance: '15.00', alarm_level: 2 }

let server
beforeEach(() => {
  global.wx = createWx()
  wx.setStorageSync('feikong.token', 'tok-1')
  server = {
    'GET /subscriptions': json(200, STATUS),
    'POST /subscriptions': req => json(200, { ...STATUS, counts: Object.fromEntries(Object.entries(req.data.results).filter(([, v]) => v === 'accept').map(([k]) => [k, 1])) }),
    'GET /accounts': json(200, { accounts: [ACCOUNT, LOW] })
  }
  wx.serve(routes(server))
})

afterEach(() => jest.useRealTimers())

test('ask: the moment\'s template ids are asked, the answers posted back by catalog key', async () => {
  wx.subscribeOutcome = { ok: true, results: { 'SUB-LOW': 'accept', 'SUB-CUT': 'reject', 'SUB-OFF': 'ban' } }
  const got = await subscribe.ask('low_balance')
  expect(wx.subscribePrompts).toEqual([['SUB-LOW', 'SUB-CUT', 'SUB-OFF']])
  expect(posted()).toEqual([{ results: { low_balance: 'accept', cut_imminent: 'reject', supply_cut: 'ban' } }])
  expect(got.counts).toEqual({ low_balance: 1 })
  expect(wx.requests.every(r => r.header.Authorization === 'Bearer tok-1')).toBe(true)
})

test('ask: a prompt dismissed, no templates configured or the API down: nothing posted, no toast', async () => {
  wx.subscribeOutcome = { ok: false }
  expect(await subscribe.ask('low_balance')).toBeNull()
  expect(wx.subscribePrompts).toHaveLength(1)
  server['GET /subscriptions'] = json(200, { ...STATUS, prompts: { after_payment: [], low_balance: [] } })
  expect(await subscribe.ask('low_balance')).toBeNull()
  expect(wx.subscribePrompts).toHaveLength(1) // not asked with nothing to ask for
  server['GET /subscriptions'] = error(503, 'backend_unavailable', '服务暂不可用')
  expect(await subscribe.ask('after_payment')).toBeNull()
  expect(posted()).toEqual([])
  expect(wx.toasts).toEqual([])
})

test('after a payment succeeds the receipt, restore and low-balance messages are asked for', async () => {
  const PAY_PARAMS = { timeStamp: '1', nonceStr: 'n', package: 'prepay_id=wx1', signType: 'RSA', paySign: 's' }
  const NO = 'FK20261129100000A1B2'
  server['GET /recharge-options'] = json(200, { presets: [{ amount_fen: 5000, amount: '50.00' }], min_fen: 100, max_fen: 500000 })
  server['POST /recharges'] = json(201, { out_trade_no: NO, amount: 5000, expires_at: '', pay_params: PAY_PARAMS })
  server[`GET /recharges/${NO}/progress`] = json(200, { state: 'not_needed', message: '已到账，供电正常', steps: [], balance_fen: 5000, final: true })
  wx.subscribeOutcome = { ok: true, results: { 'SUB-PAY': 'accept', 'SUB-ON': 'accept', 'SUB-LOW': 'reject' } }
  const { page } = mountPage('pages/recharge/recharge')
  await page.onLoad({ account_id: 'acc-1' })
  expect(wx.requests.map(r => r.path)).toEqual(['/recharge-options']) // nothing asked before paying
  page.pickPreset({ currentTarget: { dataset: { index: 0 } } })
  await page.pay()
  await page.subscribing
  expect(wx.payments).toHaveLength(1)
  expect(wx.subscribePrompts).toEqual([['SUB-PAY', 'SUB-ON', 'SUB-LOW']])
  expect(posted()).toEqual([{ results: { payment_received: 'accept', supply_restored: 'accept', low_balance: 'reject' } }])
  expect(page.data.progress.state).toBe('not_needed') // the chain is followed as before
})

test('a cancelled payment asks for nothing', async () => {
  server['GET /recharge-options'] = json(200, { presets: [{ amount_fen: 5000, amount: '50.00' }], min_fen: 100, max_fen: 500000 })
  server['POST /recharges'] = json(201, { out_trade_no: 'FK1', amount: 5000, expires_at: '', pay_params: {} })
  wx.paymentOutcome = { ok: false, errMsg: 'requestPayment:fail cancel' }
  const { page } = mountPage('pages/recharge/recharge')
  await page.onLoad({ account_id: 'acc-1' })
  page.pickPreset({ currentTarget: { dataset: { index: 0 } } })
  await page.pay()
  expect(wx.subscribePrompts).toEqual([])
  expect(wx.requests.filter(r => r.path === '/subscriptions')).toEqual([])
})

test('the home page shows a reminder bar for a low balance; a tap asks for the low-balance messages', async () => {
  wx.subscribeOutcome = { ok: true, results: { 'SUB-LOW': 'accept', 'SUB-CUT': 'accept', 'SUB-OFF': 'reject' } }
  const { comp, page } = mountPage('pages/home/home')
  await page.onShow()
  expect(wx.requests.map(r => r.path)).toEqual(['/accounts']) // no prompt without a tap
  const [bar] = find(comp, 'remind')
  expect(textOf(bar)).toContain('余额偏低')
  expect(textOf(bar)).toContain('点此开启微信提醒')
  await tap(comp.querySelector('.remind'))
  await new Promise(resolve => setTimeout(resolve, 0))
  expect(wx.subscribePrompts).toEqual([['SUB-LOW', 'SUB-CUT', 'SUB-OFF']])
  expect(posted()).toEqual([{ results: { low_balance: 'accept', cut_imminent: 'accept', supply_cut: 'reject' } }])
  expect(textOf(find(comp, 'remind')[0])).toContain('已开启提醒')
})

test('no reminder bar when every balance is fine', async () => {
  server['GET /accounts'] = json(200, { accounts: [ACCOUNT] })
  const { comp, page } = mountPage('pages/home/home')
  await page.onShow()
  expect(find(comp, 'remind')).toHaveLength(0)
})
