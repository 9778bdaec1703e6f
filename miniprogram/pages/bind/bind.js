// Bind to an account, two ways (docs/miniprogram.md):
// - 绑定码: the binding code a property issued, typed in or scanned from its QR code
//   (POST /bindings: the API takes either the code or the QR's text as `code`);
// - 手机号验证: the room and the phone the tenant registered with the property; a 6-digit code
//   comes by SMS (POST /bindings/phone-code, then 60 s before another) and is typed back
//   (POST /bindings/phone). The property comes with the page's link (?property=) or is typed.
const api = require('../../utils/api')

const PHONE = /^1[3-9]\d{9}$/

function digits(text) {
  return String(text || '').replace(/[\s\-()]/g, '').replace(/^\+?86(?=1\d{10}$)/, '')
}

Page({
  data: {
    mode: 'code', code: '', busy: false,
    propertyId: '', propertyGiven: false, room: '', phone: '', otp: '', countdown: 0, sent: '', sending: false
  },

  onLoad(options) {
    const o = options || {}
    if (o.code) this.setData({ code: o.code })
    if (o.property) this.setData({ propertyId: o.property, propertyGiven: true })
    if (o.tab === 'phone' || (o.property && !o.code)) this.setData({ mode: 'phone' })
  },

  onUnload() {
    clearInterval(this.timer)
  },

  switchTab(e) {
    this.setData({ mode: e.currentTarget.dataset.mode })
  },

  onInput(e) {
    this.setData({ code: e.detail.value })
  },

  onField(e) {
    this.setData({ [e.currentTarget.dataset.field]: e.detail.value })
  },

  submit() {
    return this.bind(this.data.code)
  },

  scan() {
    return new Promise(resolve => {
      wx.scanCode({
        onlyFromCamera: false,
        scanType: ['qrCode'],
        success: res => resolve(this.bind(res.result)),
        fail: () => resolve(null) // cancelled: nothing to say
      })
    })
  },

  async bind(raw) {
    const code = String(raw || '').trim()
    if (!code) {
      api.toast('请输入绑定码')
      return null
    }
    if (this.data.busy) return null
    this.setData({ busy: true })
    try {
      const account = await api.call('bind', { data: { code } })
      this.bound()
      return account
    } catch (e) {
      return null
    } finally {
      this.setData({ busy: false })
    }
  },

  bound() {
    clearInterval(this.timer)
    wx.showToast({ title: '绑定成功', icon: 'success' })
    wx.reLaunch({ url: '/pages/home/home' })
  },

  // the property, room and phone as the API takes them; a toast and null when one is missing
  place() {
    const propertyId = String(this.data.propertyId || '').trim()
    const room = String(this.data.room || '').trim()
    const phone = digits(this.data.phone)
    if (!propertyId) { api.toast('请填写物业编号'); return null }
    if (!room) { api.toast('请填写房间号'); return null }
    if (!PHONE.test(phone)) { api.toast('请填写 11 位手机号'); return null }
    return { property_id: propertyId, room, phone }
  },

  startCountdown(seconds) {
    clearInterval(this.timer)
    this.setData({ countdown: seconds })
    this.timer = setInterval(() => this.tick(), 1000)
  },

  tick() {
    const left = this.data.countdown - 1
    if (left <= 0) clearInterval(this.timer)
    this.setData({ countdown: Math.max(0, left) })
  },

  async sendCode() {
    if (this.data.countdown > 0 || this.data.sending) return null
    const body = this.place()
    if (!body) return null
    this.setData({ sending: true })
    try {
      const r = await api.call('bindPhoneCode', { data: body })
      this.setData({ sent: r.message })
      this.startCountdown(r.resend_after || 60)
      return r
    } catch (e) {
      const m = e.code === 'phone_code_too_soon' && /(\d+) 秒/.exec(e.message || '')
      if (m) this.startCountdown(parseInt(m[1], 10))
      return null
    } finally {
      this.setData({ sending: false })
    }
  },

  async submitPhone() {
    const body = this.place()
    if (!body) return null
    const code = String(this.data.otp || '').replace(/\s/g, '')
    if (!/^\d{6}$/.test(code)) {
      api.toast('请输入短信中的 6 位验证码')
      return null
    }
    if (this.data.busy) return null
    this.setData({ busy: true })
    try {
      const account = await api.call('bindPhone', { data: Object.assign(body, { code }) })
      this.bound()
      return account
    } catch (e) {
      return null
    } finally {
      this.setData({ busy: false })
    }
  }
})
