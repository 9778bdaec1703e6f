// Recharge: a preset or custom amount -> POST /recharges -> wx.requestPayment with the
// order's JSAPI pay_params -> GET /recharges/<no>/progress until the chain ends
// (paid -> credited -> command sent -> power restored).
const api = require('../../utils/api')
const config = require('../../config')
const format = require('../../utils/format')
const subscribe = require('../../utils/subscribe')

// progress states after which nothing more will happen on its own (when the answer has no `final`)
const FINAL = ['restored', 'not_needed', 'needs_local_confirm', 'site_offline', 'failed']

function requestPayment(p) {
  return new Promise((resolve, reject) => {
    wx.requestPayment({
      timeStamp: p.timeStamp,
      nonceStr: p.nonceStr,
      package: p.package,
      signType: p.signType,
      paySign: p.paySign,
      success: resolve,
      fail: reject
    })
  })
}

Page({
  data: {
    accountId: '',
    presets: [],
    minFen: 0,
    maxFen: 0,
    limits: '',
    selected: -1,
    custom: '',
    amountFen: 0,
    paying: false,
    order: null,
    progress: null
  },

  onLoad(options) {
    this.setData({ accountId: (options && options.account_id) || '' })
    return this.loadOptions()
  },

  onUnload() {
    this.stopPolling()
  },

  async loadOptions() {
    try {
      const body = await api.call('rechargeOptions', { query: { account_id: this.data.accountId } })
      const presets = (body.presets || []).map(p => ({ amount_fen: p.amount_fen, amount: p.amount || format.yuan(p.amount_fen) }))
      const minFen = body.min_fen || 0
      const maxFen = body.max_fen || 0
      this.setData({ presets, minFen, maxFen, limits: minFen && maxFen ? `单次可充 ${format.yuan(minFen)} ~ ${format.yuan(maxFen)} 元` : '' })
    } catch (e) {
      // toast shown; a custom amount still works
    }
  },

  pickPreset(e) {
    const i = Number(e.currentTarget.dataset.index)
    this.setData({ selected: i, custom: '', amountFen: this.data.presets[i].amount_fen })
  },

  onCustom(e) {
    const custom = e.detail.value
    this.setData({ custom, selected: -1, amountFen: format.fenOf(custom) || 0 })
  },

  // the amount chosen, or null with a toast saying what is wrong
  checkedAmount() {
    const { amountFen, minFen, maxFen, custom, selected } = this.data
    if (selected < 0 && custom && !format.fenOf(custom)) return api.toast('请输入正确的金额，最多两位小数'), null
    if (!amountFen) return api.toast('请选择或输入充值金额'), null
    if (minFen && amountFen < minFen) return api.toast(`单次最少充值 ${format.yuan(minFen)} 元`), null
    if (maxFen && amountFen > maxFen) return api.toast(`单次最多充值 ${format.yuan(maxFen)} 元`), null
    return amountFen
  },

  async pay() {
    if (this.data.paying) return
    const amount = this.checkedAmount()
    if (!amount) return
    this.stopPolling()
    this.setData({ paying: true, progress: null, order: null })
    let order
    try {
      order = await api.call('createRecharge', { data: { account_id: this.data.accountId, amount } })
    } catch (e) {
      this.setData({ paying: false })
      return
    }
    this.setData({ order: { out_trade_no: order.out_trade_no, amount: format.yuan(order.amount) } })
    try {
      await requestPayment(order.pay_params)
    } catch (e) {
      const cancelled = e && /cancel/.test(e.errMsg || '')
      api.toast(cancelled ? '已取消支付' : '支付未完成，请重试')
      this.setData({ paying: false, order: null })
      return
    }
    this.setData({ paying: false })
    // paid: ask for the one-time subscribe messages (receipt, restore, low balance) while the chain runs
    this.subscribing = subscribe.ask('after_payment')
    this.polls = 0
    await this.poll()
  },

  async poll() {
    this.timer = null
    const no = this.data.order && this.data.order.out_trade_no
    if (!no) return
    this.polls = (this.polls || 0) + 1
    let body = null
    try {
      body = await api.call('rechargeProgress', { params: { out_trade_no: no }, silent: true })
    } catch (e) {
      // a lost answer: ask again on the next tick
    }
    if (body) {
      const final = typeof body.final === 'boolean' ? body.final : FINAL.includes(body.state)
      this.setData({
        progress: {
          state: body.state,
          message: body.message || '',
          steps: body.steps || [],
          balance: body.balance_fen === undefined || body.balance_fen === null ? '' : format.yuan(body.balance_fen),
          final
        }
      })
      if (final) return
    }
    if (this.polls >= config.progressPollMax) {
      this.setData({ 'progress.message': '仍在处理中，稍后可在首页查看余额与供电状态' })
      return
    }
    this.timer = setTimeout(() => this.poll(), config.progressPollMs)
  },

  stopPolling() {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
  },

  done() {
    this.stopPolling()
    wx.reLaunch({ url: '/pages/home/home' })
  }
})
