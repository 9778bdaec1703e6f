// One account as its tenant sees it: place, balance, supply state in words, forecast and
// alarm hint; its buttons fire `action` with {action: "recharge"|"usage"|"statement", account_id}.
const format = require('../../utils/format')

function viewOf(a) {
  if (!a || !a.account_id) return {}
  const supply = format.supply(a.supply)
  let alarm = ''
  if (supply.state === 'cut') {
    alarm = a.restore_line_fen !== undefined && a.restore_line_fen !== null
      ? `已停电：余额充到 ¥${format.yuan(a.restore_line_fen)} 以上即自动恢复供电`
      : '已停电：充值后自动恢复供电'
  } else if (supply.state === 'pending') {
    alarm = '余额已不足，即将停电，请尽快充值'
  } else if (a.alarm_level > 0) {
    alarm = '余额偏低，请及时充值'
  }
  const balanceFen = a.balance_fen
  return {
    place: [a.property_name, a.room_name].filter(Boolean).join(' · ') || a.name || '',
    name: a.name || '',
    balance: a.balance || format.yuan(balanceFen),
    low: balanceFen < 0 || a.alarm_level > 0,
    supplyState: supply.state,
    supplyText: supply.text,
    reason: supply.state === 'on' ? '' : supply.reason,
    forecast: a.forecast && a.forecast.text ? a.forecast.text : '',
    alarm
  }
}

Component({
  properties: {
    account: { type: Object, value: {} }
  },
  data: { view: {} },
  observers: {
    account(a) {
      this.setData({ view: viewOf(a) })
    }
  },
  methods: {
    onAction(e) {
      this.triggerEvent('action', { action: e.currentTarget.dataset.action, account_id: this.data.account.account_id })
    }
  }
})
