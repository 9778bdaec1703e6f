// My accounts (GET /accounts): balance, supply state, forecast and alarm hint per account.
const api = require('../../utils/api')

Page({
  data: { accounts: [], loaded: false, failed: false },

  onShow() {
    return this.load()
  },

  onPullDownRefresh() {
    return this.load().then(() => wx.stopPullDownRefresh())
  },

  async load() {
    try {
      const body = await api.call('accounts')
      this.setData({ accounts: body.accounts || [], loaded: true, failed: false })
    } catch (e) {
      this.setData({ loaded: true, failed: true })
    }
  },

  // a balance card's button: recharge, usage or statement of that account
  onAction(e) {
    const { action, account_id: accountId } = e.detail
    wx.navigateTo({ url: `/pages/${action}/${action}?account_id=${encodeURIComponent(accountId)}` })
  },

  toBind() {
    wx.navigateTo({ url: '/pages/bind/bind' })
  }
})
