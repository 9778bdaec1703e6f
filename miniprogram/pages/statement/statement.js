// The ledger statement (GET /accounts/<id>/statement): every entry with its cause, a page
// at a time, the next one asked for with `next_cursor` when the tenant reaches the bottom.
const api = require('../../utils/api')
const format = require('../../utils/format')

const PAGE_SIZE = 20

function rowOf(e) {
  const fen = e.amount_fen || 0
  const time = format.dateTime(e.occurred_at || e.posted_at)
  const payer = format.payer(e.payer)
  return {
    id: e.entry_id,
    kind: e.kind_text || e.kind,
    cause: e.cause_text || '',
    memo: e.memo || '',
    amount: `${fen > 0 ? '+' : ''}${format.yuan(fen)}`,
    incoming: fen > 0,
    balance: format.yuan(e.balance_after_fen),
    meta: [time, payer, e.memo].filter(Boolean).join(' · ')
  }
}

Page({
  data: { accountId: '', entries: [], cursor: null, done: false, loading: false, loaded: false },

  onLoad(options) {
    this.setData({ accountId: (options && options.account_id) || '' })
    return this.fetch(true)
  },

  onPullDownRefresh() {
    return this.fetch(true).then(() => wx.stopPullDownRefresh())
  },

  onReachBottom() {
    return this.fetch(false)
  },

  async fetch(first) {
    if (this.data.loading || (!first && this.data.done)) return
    this.setData({ loading: true })
    try {
      const body = await api.call('statement', {
        params: { account_id: this.data.accountId },
        query: { cursor: first ? null : this.data.cursor, limit: PAGE_SIZE }
      })
      const rows = (body.entries || []).map(rowOf)
      this.setData({
        entries: first ? rows : this.data.entries.concat(rows),
        cursor: body.next_cursor || null,
        done: !body.next_cursor,
        loading: false,
        loaded: true
      })
    } catch (e) {
      this.setData({ loading: false, loaded: true })
    }
  }
})
