// Usage and cost by day (this month), month (last 12) or year (last 5) from
// GET /accounts/<id>/usage, as bars drawn with views, with the time-of-use split.
const api = require('../../utils/api')
const format = require('../../utils/format')

const GRANULARITIES = [
  { key: 'day', text: '按日' },
  { key: 'month', text: '按月' },
  { key: 'year', text: '按年' }
]
const METRICS = [
  { key: 'cost', text: '金额' },
  { key: 'electricity', text: '用电' },
  { key: 'water', text: '用水' }
]

// the dates asked for, as China's calendar has them on `now`
function rangeOf(granularity, now) {
  const today = format.isoDay(now)
  const y = Number(today.slice(0, 4))
  const m = Number(today.slice(5, 7))
  const pad = n => String(n).padStart(2, '0')
  if (granularity === 'day') return { start: `${y}-${pad(m)}-01`, end: today }
  if (granularity === 'month') {
    const back = y * 12 + (m - 1) - 11
    return { start: `${Math.floor(back / 12)}-${pad((back % 12) + 1)}-01`, end: today }
  }
  return { start: `${y - 4}-01-01`, end: today }
}

function labelOf(granularity, period) {
  if (granularity === 'day') return `${Number(period.slice(8, 10))}日`
  if (granularity === 'month') return `${Number(period.slice(5, 7))}月`
  return period
}

function barOf(metric, p) {
  if (metric === 'electricity') return { value: Number(p.electricity_kwh) || 0, text: `${p.electricity_kwh || '0'} kWh` }
  if (metric === 'water') return { value: Number(p.water_m3) || 0, text: `${p.water_m3 || '0'} m³` }
  return { value: p.cost_fen || 0, text: `${format.yuan(p.cost_fen || 0)} 元` }
}

// the time-of-use split of electricity: each band's quantity, cost and share of the cost
function splitOf(bands) {
  const list = (bands || []).filter(b => !b.kind || b.kind === 'electricity')
  const total = list.reduce((s, b) => s + (b.cost_fen || 0), 0)
  return list.map(b => ({
    band: b.band,
    text: b.band_text || b.band,
    quantity: `${b.quantity} ${b.unit || 'kWh'}`,
    cost: format.yuan(b.cost_fen || 0),
    pct: total > 0 ? Math.round(((b.cost_fen || 0) * 100) / total) : 0
  }))
}

function summaryOf(p) {
  if (!p) return null
  return {
    electricity: p.electricity_kwh || '0',
    water: p.water_m3 || '0',
    cost: p.cost || format.yuan(p.cost_fen || 0),
    split: splitOf(p.bands)
  }
}

Page({
  data: {
    accountId: '',
    granularities: GRANULARITIES,
    metrics: METRICS,
    granularity: 'day',
    metric: 'cost',
    points: [],
    bars: [],
    selected: -1,
    detail: null,
    totals: null,
    loading: false
  },

  onLoad(options) {
    this.setData({ accountId: (options && options.account_id) || '' })
    return this.load()
  },

  onPullDownRefresh() {
    return this.load().then(() => wx.stopPullDownRefresh())
  },

  pickGranularity(e) {
    const granularity = e.currentTarget.dataset.key
    if (granularity === this.data.granularity) return Promise.resolve()
    this.setData({ granularity })
    return this.load()
  },

  pickMetric(e) {
    this.setData({ metric: e.currentTarget.dataset.key })
    this.draw()
  },

  onSelect(e) {
    this.select(e.detail.index)
  },

  async load() {
    const { granularity, accountId } = this.data
    const range = rangeOf(granularity, new Date(Date.now()))
    this.setData({ loading: true })
    try {
      const body = await api.call('usage', { params: { account_id: accountId }, query: { granularity, start: range.start, end: range.end } })
      this.setData({ points: body.points || [], totals: summaryOf(body.totals), loading: false })
      this.draw()
      this.select(this.data.points.length - 1)
    } catch (e) {
      this.setData({ loading: false })
    }
  },

  draw() {
    const { points, metric, granularity } = this.data
    this.setData({ bars: points.map(p => Object.assign({ label: labelOf(granularity, p.period) }, barOf(metric, p))) })
  },

  select(index) {
    const p = this.data.points[index]
    if (!p) return this.setData({ selected: -1, detail: null })
    this.setData({ selected: index, detail: Object.assign({ period: p.period }, summaryOf(p)) })
  }
})

module.exports = { rangeOf, splitOf }
