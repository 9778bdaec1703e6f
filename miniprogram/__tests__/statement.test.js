// pages/statement: GET /accounts/<id>/statement a page at a time, the next page asked for
// with next_cursor when the tenant reaches the bottom.
const { createWx, json, error, routes } = require('./helpers/wx')
const { mountPage, textOf, find } = require('./helpers/page')

const entry = (n, amountFen, balanceAfterFen, extra = {}) => ({
  entry_id: `e${n}`, kind: amountFen > 0 ? 'recharge' : 'usage', kind_text: amountFen > 0 ? '充值' : '电费',
  amount_fen: amountFen, amount: (amountFen / 100).toFixed(2), balance_after_fen: balanceAfterFen,
  occurred_at: `2026-11-2${n}T01:00:00+00:00`, posted_at: `2026-11-2${n}T01:00:05+00:00`,
  cause_text: amountFen > 0 ? '微信支付充值' : '电表读数 1234.5 kWh', memo: '', payer: amountFen > 0 ? '微信支付' : null,
  out_trade_no: null,
  ...extra
})

const PAGE1 = { entries: [entry(9, -125, 4875), entry(8, 5000, 5000, { occurred_at: null, posted_at: '2026-11-28T02:30:00+00:00' })], next_cursor: 'c2/+=' }
const PAGE2 = { entries: [entry(7, -50, 0)], next_cursor: null }

beforeEach(() => {
  global.wx = createWx()
  wx.setStorageSync('feikong.token', 'tok-1')
  wx.serve(routes({
    'GET /accounts/acc-1/statement': req => (req.query.cursor === undefined ? json(200, PAGE1)
      : req.query.cursor === 'c2/+=' ? json(200, PAGE2) : error(400, 'cursor_invalid', '翻页参数无效'))
  }))
})

test('the first page, then the next one with the cursor on reaching the bottom, then no more', async () => {
  const { comp, page } = mountPage('pages/statement/statement')
  await page.onLoad({ account_id: 'acc-1' })
  const rows = () => comp.querySelectorAll('.row')
  expect(rows()).toHaveLength(2)
  expect(find(rows()[0], 'kind').map(textOf)).toEqual(['电费'])
  expect(find(rows()[0], 'cause').map(textOf)).toEqual(['电表读数 1234.5 kWh'])
  expect(find(rows()[0], 'amount').map(textOf)).toEqual(['-1.25'])
  expect(textOf(find(rows()[0], 'meta')[0])).toBe('2026-11-29 09:00')
  expect(find(rows()[1], 'amount').map(textOf)).toEqual(['+50.00'])
  expect(find(rows()[1], 'amount')[0].className).toContain('positive')
  expect(textOf(find(rows()[1], 'meta')[0])).toBe('2026-11-28 10:30 · 微信支付') // no occurred_at: the posting time
  expect(textOf(find(comp, 'foot')[0])).toBe('上拉加载更多')

  await page.onReachBottom()
  expect(rows()).toHaveLength(3)
  expect(find(rows()[2], 'side').map(textOf)).toEqual(['-0.50余额 0.00'])
  expect(textOf(find(comp, 'foot')[0])).toBe('没有更多了')

  await page.onReachBottom()
  expect(wx.requests.map(r => r.url.slice(r.url.indexOf('/accounts')))).toEqual([
    '/accounts/acc-1/statement?limit=20',
    '/accounts/acc-1/statement?cursor=c2%2F%2B%3D&limit=20'
  ])
  expect(wx.requests.every(r => r.method === 'GET' && r.header.Authorization === 'Bearer tok-1')).toBe(true)
})

test('reaching the bottom twice while a page loads asks once', async () => {
  const { page } = mountPage('pages/statement/statement')
  await page.onLoad({ account_id: 'acc-1' })
  await Promise.all([page.onReachBottom(), page.onReachBottom()])
  expect(wx.requests).toHaveLength(2)
  expect(page.data.entries).toHaveLength(3)
})

test('pull-down refresh starts again from the first page', async () => {
  const { page } = mountPage('pages/statement/statement')
  await page.onLoad({ account_id: 'acc-1' })
  await page.onReachBottom()
  await page.onPullDownRefresh()
  expect(page.data.entries.map(e => e.id)).toEqual(['e9', 'e8'])
  expect(page.data.done).toBe(false)
  expect(wx.requests[2].query).toEqual({ limit: '20' })
  expect(wx.stopPullDownRefresh).toHaveBeenCalledTimes(1)
})

test('an empty statement says so; another tenant\'s account is the API\'s 404 message', async () => {
  wx.serve(routes({
    'GET /accounts/acc-1/statement': json(200, { entries: [], next_cursor: null }),
    'GET /accounts/acc-x/statement': error(404, 'account_not_found', '账户不存在')
  }))
  const { comp, page } = mountPage('pages/statement/statement')
  await page.onLoad({ account_id: 'acc-1' })
  expect(textOf(comp)).toBe('暂无账单')
  const other = mountPage('pages/statement/statement')
  await other.page.onLoad({ account_id: 'acc-x' })
  expect(wx.toasts.map(t => t.title)).toEqual(['账户不存在'])
  expect(other.page.data.entries).toEqual([])
})
