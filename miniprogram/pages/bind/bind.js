// Bind to an account with the binding code a property issued, typed in or scanned from its
// QR code (POST /bindings: the API takes either the code or the QR's text as `code`).
const api = require('../../utils/api')

Page({
  data: { code: '', busy: false },

  onLoad(options) {
    if (options && options.code) this.setData({ code: options.code })
  },

  onInput(e) {
    this.setData({ code: e.detail.value })
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
      wx.showToast({ title: '绑定成功', icon: 'success' })
      wx.reLaunch({ url: '/pages/home/home' })
      return account
    } catch (e) {
      return null
    } finally {
      this.setData({ busy: false })
    }
  }
})
