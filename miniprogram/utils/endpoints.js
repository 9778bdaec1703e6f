// Every path of the tenant API (/api/v1, docs/tenant-api.md) that the mini-program calls,
// and only here: tests/unit/test_miniprogram_contract.py checks each one, with its method,
// against the Flask app's routes. Keep one endpoint a line in this exact form.
module.exports = {
  login: { method: 'POST', path: '/login' },
  refresh: { method: 'POST', path: '/token/refresh' },
  logout: { method: 'POST', path: '/logout' },
  bind: { method: 'POST', path: '/bindings' },
  bindPhoneCode: { method: 'POST', path: '/bindings/phone-code' },
  bindPhone: { method: 'POST', path: '/bindings/phone' },
  accounts: { method: 'GET', path: '/accounts' },
  account: { method: 'GET', path: '/accounts/:account_id' },
  usage: { method: 'GET', path: '/accounts/:account_id/usage' },
  statement: { method: 'GET', path: '/accounts/:account_id/statement' },
  rechargeOptions: { method: 'GET', path: '/recharge-options' },
  createRecharge: { method: 'POST', path: '/recharges' },
  rechargeProgress: { method: 'GET', path: '/recharges/:out_trade_no/progress' },
  subscriptions: { method: 'GET', path: '/subscriptions' },
  recordSubscriptions: { method: 'POST', path: '/subscriptions' }
}
