// The reusable components, rendered by miniprogram-simulate: data in, WXML out, events.
const simulate = require('miniprogram-simulate')
const { textOf, loadComponent, find, tap } = require('./helpers/page')

const load = name => loadComponent(`/components/${name}/index`, name)

function mount(name, props) {
  const comp = simulate.render(load(name), props)
  comp.attach(document.createElement('parent-wrapper'))
  return comp
}

const ACCOUNT = {
  account_id: 'acc-1', property_id: 'p1', property_name: '阳光公寓', room_name: 'B-201', name: '张三',
  balance_fen: 12345, balance: '123.45', supply: { state: 'on', text: '正常供电', reason: '' },
  alarm_level: 0, overdraft_limit_fen: 1000, restore_line_fen: 500,
  forecast: { days: 12, daily_cost_fen: 1000, text: '余额约可用 12 天' }
}

describe('balance-card', () => {
  test('shows the place, balance, supply in words and the forecast', () => {
    const card = mount('balance-card', { account: ACCOUNT })
    expect(textOf(card.querySelector('.place'))).toBe('阳光公寓 · B-201')
    expect(textOf(card.querySelector('.balance'))).toBe('123.45')
    expect(textOf(card.querySelector('.supply'))).toBe('正常供电')
    expect(card.querySelector('.supply').dom.className).toContain('supply-on')
    expect(textOf(card.querySelector('.forecast'))).toBe('余额约可用 12 天')
    expect(card.querySelector('.alarm')).toBeUndefined()
  })

  test('a cut account says why and how much brings power back', () => {
    const card = mount('balance-card', {
      account: { ...ACCOUNT, balance_fen: -800, balance: '-8.00', alarm_level: 3,
        supply: { state: 'cut', text: '已停电', reason: '余额低于透支额度' }, forecast: { days: 0, daily_cost_fen: 1000, text: '余额约可用 0 天' } }
    })
    expect(textOf(card.querySelector('.supply'))).toBe('已停电')
    expect(textOf(card.querySelector('.reason'))).toBe('余额低于透支额度')
    expect(textOf(card.querySelector('.alarm'))).toBe('已停电：余额充到 ¥5.00 以上即自动恢复供电')
    expect(card.querySelector('.balance').dom.className).toContain('low')
  })

  test('an alarm level above zero gives a low-balance hint, and the data follows property changes', () => {
    const card = mount('balance-card', { account: ACCOUNT })
    card.setData({ account: { ...ACCOUNT, alarm_level: 1, balance_fen: 900, balance: '9.00' } })
    expect(textOf(card.querySelector('.alarm'))).toBe('余额偏低，请及时充值')
    expect(textOf(card.querySelector('.balance'))).toBe('9.00')
  })

  test('its buttons fire `action` with the account id', async () => {
    const card = mount('balance-card', { account: ACCOUNT })
    const seen = []
    card.addEventListener('action', e => seen.push(e.detail))
    const [recharge, usage, statement] = card.querySelectorAll('.act')
    await tap(recharge)
    await tap(statement)
    await tap(usage)
    expect(seen).toEqual([
      { action: 'recharge', account_id: 'acc-1' },
      { action: 'statement', account_id: 'acc-1' },
      { action: 'usage', account_id: 'acc-1' }
    ])
  })
})

describe('progress-steps', () => {
  const STEPS = [
    { key: 'paid', text: '已支付', done: true, at: '2026-11-29T02:00:05Z' },
    { key: 'credited', text: '已到账', done: true, at: '2026-11-29T02:00:06Z' },
    { key: 'command_sent', text: '合闸指令已下发', done: false, at: null },
    { key: 'relay_closed', text: '已恢复供电', done: false, at: null }
  ]

  test('done steps are ticked with their China time, the first open one is current', () => {
    const comp = mount('progress-steps', { steps: STEPS, state: 'credited', message: '已到账，正在下发合闸指令' })
    const steps = comp.querySelectorAll('.step')
    expect(steps.map(s => textOf(find(s, 'text')[0]))).toEqual(['已支付', '已到账', '合闸指令已下发', '已恢复供电'])
    expect(steps.map(s => textOf(find(s, 'dot')[0]))).toEqual(['✓', '✓', '3', '4'])
    expect(steps.map(s => find(s, 'at').map(textOf))).toEqual([['10:00'], ['10:00'], [], []])
    expect(steps.map(s => find(s, 'line').length)).toEqual([1, 1, 1, 0])
    expect(steps[2].dom.className).toContain('current')
    expect(steps[3].dom.className).not.toContain('current')
    expect(textOf(comp.querySelector('.message'))).toBe('已到账，正在下发合闸指令')
    expect(comp.querySelector('.message').dom.className).not.toMatch(/good|warn/)
  })

  test('the message is coloured by how the chain ended', () => {
    const done = STEPS.map(s => ({ ...s, done: true, at: '2026-11-29T02:00:09Z' }))
    const ok = mount('progress-steps', { steps: done, state: 'restored', message: '已恢复供电' })
    expect(ok.querySelector('.message').dom.className).toContain('good')
    const offline = mount('progress-steps', { steps: STEPS, state: 'site_offline', message: '现场网络离线，恢复联网后自动合闸' })
    expect(offline.querySelector('.message').dom.className).toContain('warn')
  })
})

describe('usage-bars', () => {
  test('bar heights are relative to the largest value, a small non-zero one stays visible', () => {
    const comp = mount('usage-bars', {
      bars: [{ label: '1日', value: 400, text: '' }, { label: '2日', value: 100, text: '' }, { label: '3日', value: 0, text: '' },
        { label: '4日', value: 1, text: '' }],
      selected: 1
    })
    const bars = comp.querySelectorAll('.bar')
    expect(bars.map(b => find(b, 'fill')[0].getAttribute('style'))).toEqual(
      ['height: 100%', 'height: 25%', 'height: 0%', 'height: 2%'])
    expect(bars.map(b => textOf(find(b, 'label')[0]))).toEqual(['1日', '2日', '3日', '4日'])
    expect(bars[1].dom.className).toContain('selected')
  })

  test('tapping a bar fires `select` with its index; no bars says so', async () => {
    const comp = mount('usage-bars', { bars: [{ label: 'a', value: 1 }, { label: 'b', value: 2 }] })
    const seen = []
    comp.addEventListener('select', e => seen.push(e.detail.index))
    await tap(comp.querySelectorAll('.bar')[1])
    expect(seen).toEqual([1])
    expect(textOf(mount('usage-bars', { bars: [] }))).toBe('暂无数据')
  })
})
