// My accounts (GET /accounts): balance, supply state, forecast and alarm hint per account.
const api = require('../../utils/api')
const subscribe = require('../../utils/subscribe')

// an account the tenant should hear about: below an alarm amount, or supply cut or about to be
const low = a => (a.alarm_level || 0) > 0 || (a.supply && a.supply.state !== 'on')

Page({
  data: { accounts: [], loaded: false, failed: false, lowBalance: false, remind: '' },

  onShow() {
    return this.load()
  },

  onPullDownRefresh() {
    return this.load().then(() => wx.stopPullDownRefresh())
  },

  async load() {
    try {
      const body = await api.call('accounts')
      const accounts = body.accounts || []
      this.setData({ accounts, loaded: true, failed: false, lowBalance: accounts.some(low) })
    } catch (e) {
      this.setData({ loaded: true, failed: true })
    }
  },

  // a balance card's button: recharge, usage or statement of that account
  onAction(e) {
    const { action, account_id: accountId } = e.detail
    wx.navigateTo({ url: `/pages/${action}/${action}?account_id=${encodeURIComponent(accountId)}` })
  },

  // the reminder bar's tap: ask for the one-time subscribe messages of a low balance
  async remindMe() {
    const got = await subscribe.ask('low_balance')
    if (!got) return
    const accepted = Object.values(got.results).filter(r => r === 'accept').length
    this.setData({ remind: accepted ? '已开启提醒：余额不足、即将停电时会通过微信通知你' : '未开启提醒，可随时再次点击开启' })
  },

  toBind() {
    wx.navigateTo({ url: '/pages/bind/bind' })
  }
})
