// The one place a property company sets where its Feikong API lives (docs/miniprogram.md).
// It must be an https:// URL whose domain is listed as a "request legal domain"
// (request合法域名) in the mini-program admin console; the path ends in /api/v1.
module.exports = {
  apiBase: 'https://api.example.com/api/v1',
  // how often the recharge page asks where the money is, and for how long at most
  progressPollMs: 2000,
  progressPollMax: 90
}
