// pages/recharge: options, POST /recharges, wx.requestPayment with the order's pay_params,
// then GET /recharges/<no>/progress polled until the chain ends (time compressed by fake timers).
const { createWx, json, error, routes } = require('./helpers/wx')
const { mountPage, textOf, find } = require('./helpers/page')
const config = require('../config')

const OPTIONS = {
  presets: [{ amount_fen: 2000, amount: '20.00' }, { amount_fen: 5000, amount: '50.00' }, { amount_fen: 10000, amount: '100.00' }],
  min_fen: 100, max_fen: 500000
}
const PAY_PARAMS = {
  appId: 'wx8888888888888888', timeStamp: '1796000000', nonceStr: '5K8264ILTKCH16CQ2502SI8ZNMTM67VS',
  package: 'prepay_id=wx201410272009395522657a690389285100', signType: 'RSA', paySign: 'oR9d8PuhnIc+YZ8cBHFCwfgpaK9gd7vaRvkYD7rthRAZ/X+QBhcCYL21N7cHCTUxbQ+EAt6Uy+lwSN22f5YZvI45MLko8Pfso0jm46v5hqcVwrk6uddkGuT+Cdvu4WBqDzaDjnNa5UK3GfE1Wfl2gHxIIY5lLdUgWFts17D4WuolLLkiFZV+JSHMvH7eaLdT9N5GBovBwu5yYKUR7skR8Fu+LozcSqQixnlEZUfyE55feLOQTUYzLmR9pNtPbPsu6WVhbNHMS3Ss2+AehHvz+n64GDmXxbX++IOBvm2olHu3PsOUGRwhudhVf7UcGcunXt8cqNjKNqZLhLw4jq/xDg=='
}
const ORDER = { out_trade_no: 'FK20261129100000A1B2', amount: 5000, expires_at: '2026-11-29T10:30:00+08:00', pay_params: PAY_PARAMS }
const PROGRESS_URL = `/recharges/${ORDER.out_trade_no}/progress`

function progress(state, doneCount, message, balanceFen) {
  const keys = [['paid', '已支付'], ['credited', '已到账'], ['command_sent', '合闸指令已下发'], ['relay_closed', '已恢复供电']]
  return json(200, {
    state, message, balance_fen: balanceFen, balance: (balanceFen / 100).toFixed(2),
    final: ['restored', 'not_needed', 'needs_local_confirm', 'site_offline', 'failed'].includes(state),
    steps: keys.map(([key, text], i) => ({ key, text, done: i < doneCount, at: i < doneCount ? `2026-11-29T02:00:0${i}Z` : null }))
  })
}

let states
beforeEach(() => {
  global.wx = createWx()
  wx.setStorageSync('feikong.token', 'tok-1')
  states = []
  wx.serve(routes({
    'GET /recharge-options': json(200, OPTIONS),
    'POST /recharges': json(201, ORDER),
    [`GET ${PROGRESS_URL}`]: () => states.shift() || progress('command_sent', 3, '合闸指令已下发，等待电表确认', 4700)
  }))
})

afterEach(() => jest.useRealTimers())

async function opened() {
  const mounted = mountPage('pages/recharge/recharge')
  await mounted.page.onLoad({ account_id: 'acc-1' })
  return mounted
}

test('the presets come from GET /recharge-options for the account', async () => {
  const { comp } = await opened()
  expect(wx.requests.map(r => [r.method, r.path, r.query])).toEqual([['GET', '/recharge-options', { account_id: 'acc-1' }]])
  expect(comp.querySelectorAll('.preset').map(textOf)).toEqual(['20.00元', '50.00元', '100.00元'])
  expect(textOf(comp)).toContain('单次可充 1.00 ~ 5000.00 元')
})

test('paying a preset: the order, wx.requestPayment with exactly its pay_params, then the chain until power is back', async () => {
  const { comp, page } = await opened()
  jest.useFakeTimers()
  states = [
    progress('waiting_payment', 0, '等待支付结果', -300),
    progress('credited', 2, '已到账，正在下发合闸指令', 4700),
    progress('command_sent', 3, '合闸指令已下发，等待电表确认', 4700),
    progress('restored', 4, '已恢复供电', 4700)
  ]
  page.pickPreset({ currentTarget: { dataset: { index: 1 } } })
  await page.pay()

  const order = wx.requests.find(r => r.path === '/recharges')
  expect(order).toMatchObject({ method: 'POST', data: { account_id: 'acc-1', amount: 5000 }, header: { Authorization: 'Bearer tok-1' } })
  expect(wx.payments).toHaveLength(1)
  const { success, fail, ...sent } = wx.payments[0]
  expect(sent).toEqual({
    timeStamp: PAY_PARAMS.timeStamp, nonceStr: PAY_PARAMS.nonceStr, package: PAY_PARAMS.package,
    signType: 'RSA', paySign: PAY_PARAMS.paySign
  })
  expect(typeof success).toBe('function')
  expect(typeof fail).toBe('function')

  const polls = () => wx.requests.filter(r => r.path === PROGRESS_URL).length
  expect(polls()).toBe(1) // asked at once after paying
  expect(textOf(find(comp, 'message')[0])).toBe('等待支付结果')
  await jest.advanceTimersByTimeAsync(config.progressPollMs)
  expect(polls()).toBe(2)
  expect(find(comp, 'dot').map(textOf)).toEqual(['✓', '✓', '3', '4'])
  await jest.advanceTimersByTimeAsync(2 * config.progressPollMs)
  expect(polls()).toBe(4)
  expect(find(comp, 'dot').map(textOf)).toEqual(['✓', '✓', '✓', '✓'])
  expect(textOf(find(comp, 'message')[0])).toBe('已恢复供电')
  expect(textOf(find(comp, 'strong')[0])).toBe('47.00')
  await jest.advanceTimersByTimeAsync(10 * config.progressPollMs)
  expect(polls()).toBe(4) // restored ends the polling
  expect(wx.requests.every(r => r.header.Authorization === 'Bearer tok-1')).toBe(true)
})

test('a custom amount in yuan is sent in fen', async () => {
  const { page } = await opened()
  jest.useFakeTimers()
  states = [progress('not_needed', 2, '已到账，供电正常', 2000)]
  page.onCustom({ detail: { value: '12.5' } })
  await page.pay()
  expect(wx.requests.find(r => r.path === '/recharges').data).toEqual({ account_id: 'acc-1', amount: 1250 })
  expect(page.data.progress.final).toBe(true)
})

test('amounts outside the limits or malformed are refused before any order', async () => {
  const { page } = await opened()
  page.onCustom({ detail: { value: '0.5' } })
  await page.pay()
  page.onCustom({ detail: { value: '6000' } })
  await page.pay()
  page.onCustom({ detail: { value: '1.234' } })
  await page.pay()
  page.onCustom({ detail: { value: '' } })
  await page.pay()
  expect(wx.toasts.map(t => t.title)).toEqual(['单次最少充值 1.00 元', '单次最多充值 5000.00 元', '请输入正确的金额，最多两位小数', '请选择或输入充值金额'])
  expect(wx.requests.filter(r => r.path === '/recharges')).toEqual([])
})

test('a cancelled payment says so and polls nothing', async () => {
  const { page } = await opened()
  wx.paymentOutcome = { ok: false, errMsg: 'requestPayment:fail cancel' }
  page.pickPreset({ currentTarget: { dataset: { index: 0 } } })
  await page.pay()
  expect(wx.payments).toHaveLength(1)
  expect(wx.toasts.map(t => t.title)).toEqual(['已取消支付'])
  expect(wx.requests.filter(r => r.path === PROGRESS_URL)).toEqual([])
  expect(page.data.order).toBeNull()
})

test('a refused order shows the API\'s message and opens no payment', async () => {
  const { page } = await opened()
  wx.serve(routes({ 'POST /recharges': error(429, 'rate_limited', '下单太频繁，请稍后再试') }))
  page.pickPreset({ currentTarget: { dataset: { index: 0 } } })
  await page.pay()
  expect(wx.toasts.map(t => t.title)).toEqual(['下单太频繁，请稍后再试'])
  expect(wx.payments).toEqual([])
  expect(page.data.paying).toBe(false)
})

test('a meter needing a local confirmation ends the polling with its message; polling also gives up in time', async () => {
  const { comp, page } = await opened()
  jest.useFakeTimers()
  states = [progress('needs_local_confirm', 3, '电表需在现场按键确认合闸', 4700)]
  page.pickPreset({ currentTarget: { dataset: { index: 0 } } })
  await page.pay()
  await jest.advanceTimersByTimeAsync(5 * config.progressPollMs)
  expect(wx.requests.filter(r => r.path === PROGRESS_URL)).toHaveLength(1)
  expect(find(comp, 'message')[0].className).toContain('warn')
  expect(textOf(find(comp, 'message')[0])).toBe('电表需在现场按键确认合闸')

  // the default answer never ends: the page stops after progressPollMax asks
  states = []
  await page.pay()
  await jest.advanceTimersByTimeAsync((config.progressPollMax + 5) * config.progressPollMs)
  expect(wx.requests.filter(r => r.path === PROGRESS_URL)).toHaveLength(1 + config.progressPollMax)
  expect(textOf(find(comp, 'message')[0])).toBe('仍在处理中，稍后可在首页查看余额与供电状态')
})

test('leaving the page stops the polling', async () => {
  const { page } = await opened()
  jest.useFakeTimers()
  page.pickPreset({ currentTarget: { dataset: { index: 0 } } })
  await page.pay()
  page.onUnload()
  await jest.advanceTimersByTimeAsync(10 * config.progressPollMs)
  expect(wx.requests.filter(r => r.path === PROGRESS_URL)).toHaveLength(1)
})
