// Mini-program subscribe messages are one-time: each template a tenant accepts allows one
// message (docs/notifications.md "Channels"). ask(moment) asks at the moments the tenant acts:
// 'after_payment' (in wx.requestPayment's success: WeChat allows the prompt there) and
// 'low_balance' (from a tap on the home page's reminder bar: WeChat needs a tap otherwise).
// GET /subscriptions names the WeChat template ids to ask for; what WeChat answers per
// template id is posted back per catalog key (POST /subscriptions). Never throws: a prompt
// that fails or is refused changes nothing else on the page.
const api = require('./api')

function request(tmplIds) {
  return new Promise(resolve => {
    if (typeof wx.requestSubscribeMessage !== 'function') return resolve(null)
    wx.requestSubscribeMessage({
      tmplIds,
      success: res => resolve(res),
      fail: () => resolve(null)
    })
  })
}

// -> {asked: [template_key], results: {template_key: 'accept'|'reject'|...}, counts} or null
async function ask(moment) {
  try {
    const status = await api.call('subscriptions', { silent: true })
    const tmplIds = ((status.prompts || {})[moment] || []).slice(0, 3)
    if (!tmplIds.length) return null
    const keyOf = {}
    for (const t of status.templates || []) keyOf[t.template_id] = t.template_key
    const answer = await request(tmplIds)
    if (!answer) return null
    const results = {}
    for (const id of tmplIds) {
      const r = answer[id]
      if (keyOf[id] && ['accept', 'reject', 'ban', 'filter'].includes(r)) results[keyOf[id]] = r
    }
    if (!Object.keys(results).length) return null
    const body = await api.call('recordSubscriptions', { data: { results }, silent: true })
    return { asked: tmplIds.map(id => keyOf[id]), results, counts: body.counts || {} }
  } catch (e) {
    return null
  }
}

module.exports = { ask }
