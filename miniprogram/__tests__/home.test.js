// pages/home: my accounts from GET /accounts, rendered with balance-card; pull-down refresh.
const simulate = require('miniprogram-simulate')
const { createWx, json, error, routes } = require('./helpers/wx')
const { mountPage, textOf, find, tap } = require('./helpers/page')

const ACCOUNT = {
  account_id: 'acc-1', property_id: 'p1', property_name: '阳光公寓', room_name: 'B-201', name: '张三',
  balance_fen: 12345, balance: '123.45', supply: { state: 'on', text: '正常供电', reason: '' },
  alarm_level: 0, overdraft_limit_fen: 0, restore_line_fen: 0,
  forecast: { days: 12, daily_cost_fen: 1000, text: '余额约可用 12 天' }
}
const CUT = {
  ...ACCOUNT, account_id: 'acc-2', property_name: '星河商场', room_name: 'L1-05', balance_fen: -300, balance: '-3.00',
  supply: { state: 'cut', text: '已停电', reason: '余额低于透支额度' }, alarm_level: 2, restore_line_fen: 1000,
  forecast: { days: null, daily_cost_fen: 0, text: '' }
}

beforeEach(() => {
  global.wx = createWx()
  wx.setStorageSync('feikong.token', 'tok-1')
})

test('lists every account with its balance, supply state in words, forecast and alarm hint', async () => {
  wx.serve(routes({ 'GET /accounts': json(200, { accounts: [ACCOUNT, CUT] }) }))
  const { comp, page } = mountPage('pages/home/home')
  await page.onShow()
  expect(wx.requests.map(r => [r.method, r.path, r.header.Authorization])).toEqual([['GET', '/accounts', 'Bearer tok-1']])
  const cards = comp.querySelectorAll('.account')
  expect(cards).toHaveLength(2)
  expect(textOf(cards[0])).toContain('阳光公寓 · B-201')
  expect(textOf(find(cards[0], 'balance')[0])).toBe('123.45')
  expect(textOf(find(cards[0], 'forecast')[0])).toBe('余额约可用 12 天')
  expect(textOf(find(cards[1], 'supply')[0])).toBe('已停电')
  expect(textOf(find(cards[1], 'alarm')[0])).toBe('已停电：余额充到 ¥10.00 以上即自动恢复供电')
  expect(find(cards[1], 'forecast')).toHaveLength(0)
  expect(textOf(comp)).toContain('绑定其他房间')
})

test('a card button opens that account\'s page', async () => {
  wx.serve(routes({ 'GET /accounts': json(200, { accounts: [ACCOUNT, CUT] }) }))
  const { comp, page } = mountPage('pages/home/home')
  await page.onShow()
  await tap(comp.querySelectorAll('.account')[1].querySelectorAll('.act')[0])
  await tap(comp.querySelectorAll('.account')[0].querySelectorAll('.act')[2])
  expect(wx.navigations).toEqual([
    { kind: 'navigateTo', url: '/pages/recharge/recharge?account_id=acc-2' },
    { kind: 'navigateTo', url: '/pages/statement/statement?account_id=acc-1' }
  ])
})

test('pull-down refresh asks again, shows the new balance and stops the spinner', async () => {
  let balance = 12345
  wx.serve(routes({ 'GET /accounts': () => json(200, { accounts: [{ ...ACCOUNT, balance_fen: balance, balance: (balance / 100).toFixed(2) }] }) }))
  const { comp, page } = mountPage('pages/home/home')
  await page.onShow()
  balance = 2345
  await page.onPullDownRefresh()
  expect(wx.requests).toHaveLength(2)
  expect(wx.stopPullDownRefresh).toHaveBeenCalledTimes(1)
  expect(textOf(find(comp, 'balance')[0])).toBe('23.45')
})

test('no account yet: says so and offers binding', async () => {
  wx.serve(routes({ 'GET /accounts': json(200, { accounts: [] }) }))
  const { comp, page } = mountPage('pages/home/home')
  await page.onShow()
  expect(textOf(comp)).toContain('还没有绑定房间')
  await tap(comp.querySelector('.btn-plain'))
  expect(wx.navigations).toEqual([{ kind: 'navigateTo', url: '/pages/bind/bind' }])
})

test('a failed load shows the API\'s message and a retry hint', async () => {
  wx.serve(routes({ 'GET /accounts': error(429, 'rate_limited', '操作太频繁，请稍后再试') }))
  const { comp, page } = mountPage('pages/home/home')
  await page.onShow()
  await simulate.sleep(0)
  expect(wx.toasts.map(t => t.title)).toEqual(['操作太频繁，请稍后再试'])
  expect(textOf(comp)).toContain('加载失败，下拉刷新重试')
})
