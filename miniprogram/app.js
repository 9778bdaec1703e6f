// The Feikong tenant mini-program. Settings: config.js (API base URL); pages call the API
// through utils/api.js, which logs in on first use (wx.login -> POST /login).
App({
  globalData: {}
})
