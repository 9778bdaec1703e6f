// Where the money is after paying: the chain paid -> credited -> command sent -> power
// restored (GET /recharges/<no>/progress `steps`), with the state's message.
const format = require('../../utils/format')

// states that end the chain well, and those the tenant must act or wait on
const GOOD = ['restored', 'not_needed']
const WARN = ['needs_local_confirm', 'site_offline', 'failed']

Component({
  properties: {
    steps: { type: Array, value: [] },
    state: { type: String, value: '' },
    message: { type: String, value: '' }
  },
  data: { items: [], tone: '' },
  observers: {
    'steps, state'(steps, state) {
      const firstOpen = (steps || []).findIndex(s => !s.done)
      const list = steps || []
      const items = list.map((s, i) => ({
        key: s.key,
        text: s.text,
        done: !!s.done,
        mark: s.done ? '✓' : String(i + 1),
        time: s.done ? format.clock(s.at) : '',
        current: i === firstOpen,
        last: i === list.length - 1
      }))
      const tone = GOOD.includes(state) ? 'good' : WARN.includes(state) ? 'warn' : ''
      this.setData({ items, tone })
    }
  }
})
