// pages/usage: GET /accounts/<id>/usage by day, month and year; bars drawn with views; the
// time-of-use split. The clock is jest's (fake timers with a set system time).
const { createWx, json, routes } = require('./helpers/wx')
const { mountPage, textOf, find, tap } = require('./helpers/page')

const band = (b, text, quantity, costFen, kind = 'electricity') => ({
  kind, band: b, band_text: text, quantity, unit: kind === 'water' ? 'm³' : 'kWh', cost_fen: costFen, cost: (costFen / 100).toFixed(2)
})
const DAYS = {
  granularity: 'day',
  points: [
    { period: '2026-11-27', electricity_kwh: '3.00', water_m3: '0.10', cost_fen: 300, cost: '3.00', bands: [band('flat', '平', '3.00', 300)] },
    { period: '2026-11-28', electricity_kwh: '6.50', water_m3: '0.00', cost_fen: 600, cost: '6.00', bands: [band('peak', '峰', '4.00', 400), band('valley', '谷', '2.50', 200)] },
    { period: '2026-11-29', electricity_kwh: '1.50', water_m3: '0.20', cost_fen: 150, cost: '1.50', bands: [band('peak', '峰', '1.00', 100), band('valley', '谷', '0.50', 50), band('flat', '平', '0.20', 80, 'water')] }
  ],
  totals: { electricity_kwh: '11.00', water_m3: '0.30', cost_fen: 1050, cost: '10.50', bands: [band('peak', '峰', '5.00', 500), band('flat', '平', '3.00', 300), band('valley', '谷', '3.00', 250)] }
}
const MONTHS = {
  granularity: 'month',
  points: [{ period: '2026-10', electricity_kwh: '80.00', water_m3: '2.00', cost_fen: 8000, cost: '80.00', bands: [] },
    { period: '2026-11', electricity_kwh: '11.00', water_m3: '0.30', cost_fen: 1050, cost: '10.50', bands: [] }],
  totals: { electricity_kwh: '91.00', water_m3: '2.30', cost_fen: 9050, cost: '90.50', bands: [] }
}

beforeEach(() => {
  // only the clock is set: timers still run (events in simulate are dispatched by setTimeout)
  jest.useFakeTimers({ now: new Date('2026-11-29T10:00:00+08:00'), advanceTimers: true })
  global.wx = createWx()
  wx.setStorageSync('feikong.token', 'tok-1')
  wx.serve(routes({
    'GET /accounts/acc-1/usage': req => json(200, { day: DAYS, month: MONTHS, year: { granularity: 'year', points: [], totals: null } }[req.query.granularity])
  }))
})
afterEach(() => jest.useRealTimers())

async function opened() {
  const mounted = mountPage('pages/usage/usage')
  await mounted.page.onLoad({ account_id: 'acc-1' })
  return mounted
}

test('by day: this month so far, drawn as bars of cost, the latest day selected with its time-of-use split', async () => {
  const { comp } = await opened()
  expect(wx.requests.map(r => [r.method, r.path, r.query, r.header.Authorization])).toEqual([
    ['GET', '/accounts/acc-1/usage', { granularity: 'day', start: '2026-11-01', end: '2026-11-29' }, 'Bearer tok-1']])
  const bars = comp.querySelector('#bars')
  const fills = find(bars, 'fill').map(el => el.getAttribute('style'))
  expect(fills).toEqual(['height: 50%', 'height: 100%', 'height: 25%'])
  expect(find(bars, 'label').map(textOf)).toEqual(['27日', '28日', '29日'])
  expect(find(comp, 'big').map(textOf)).toEqual(['10.50', '11.00', '0.30'])
  // the selected day (the last): peak 100 fen and valley 50 fen of its electricity's 150 -> 67% and 33%; water has no time-of-use
  expect(textOf(find(comp, 'title')[0])).toBe('2026-11-29')
  expect(find(comp, 'band-name').map(textOf)).toEqual(['峰', '谷'])
  expect(find(comp, 'band-fill').map(el => el.getAttribute('style'))).toEqual(['width: 67%', 'width: 33%'])
  expect(find(comp, 'band-value').map(textOf)).toEqual(['1.00 kWh · 1.00 元', '0.50 kWh · 0.50 元'])
})

test('tapping a bar shows that day; the metric tabs redraw the bars from kWh or m³', async () => {
  const { comp, page } = await opened()
  await tap(comp.querySelector('#bars').querySelectorAll('.bar')[1])
  expect(textOf(find(comp, 'title')[0])).toBe('2026-11-28')
  expect(find(comp, 'band-fill').map(el => el.getAttribute('style'))).toEqual(['width: 67%', 'width: 33%'])
  page.pickMetric({ currentTarget: { dataset: { key: 'electricity' } } })
  expect(page.data.bars.map(b => b.value)).toEqual([3, 6.5, 1.5])
  expect(page.data.bars.map(b => b.text)).toEqual(['3.00 kWh', '6.50 kWh', '1.50 kWh'])
  page.pickMetric({ currentTarget: { dataset: { key: 'water' } } })
  expect(page.data.bars.map(b => b.value)).toEqual([0.1, 0, 0.2])
  expect(wx.requests).toHaveLength(1) // a metric is drawn from what was fetched
})

test('by month: the last twelve months; by year: the last five years', async () => {
  const { comp, page } = await opened()
  await page.pickGranularity({ currentTarget: { dataset: { key: 'month' } } })
  expect(wx.requests[1].query).toEqual({ granularity: 'month', start: '2025-12-01', end: '2026-11-29' })
  expect(find(comp, 'label').map(textOf)).toEqual(['10月', '11月'])
  await page.pickGranularity({ currentTarget: { dataset: { key: 'year' } } })
  expect(wx.requests[2].query).toEqual({ granularity: 'year', start: '2022-01-01', end: '2026-11-29' })
  expect(textOf(find(comp, 'chart')[0])).toBe('暂无数据')
  expect(page.data.detail).toBeNull()
})

test('the ranges follow China\'s calendar: 2027-01-01 00:30 in Beijing is still 2026 in UTC', () => {
  let rangeOf
  global.Page = () => {}
  jest.isolateModules(() => { ({ rangeOf } = require('../pages/usage/usage')) })
  const now = new Date('2026-12-31T16:30:00Z')
  expect(rangeOf('day', now)).toEqual({ start: '2027-01-01', end: '2027-01-01' })
  expect(rangeOf('month', now)).toEqual({ start: '2026-02-01', end: '2027-01-01' })
  expect(rangeOf('year', now)).toEqual({ start: '2023-01-01', end: '2027-01-01' })
})
