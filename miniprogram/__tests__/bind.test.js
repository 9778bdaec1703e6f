// pages/bind: POST /bindings with a typed binding code or the text of a scanned QR code.
const simulate = require('miniprogram-simulate')
const { createWx, json, error, routes } = require('./helpers/wx')
const { mountPage, tap } = require('./helpers/page')

const BOUND = { account_id: 'acc-1', property_id: 'p1', property_name: '阳光公寓', room_name: 'B-201', name: '张三' }

beforeEach(() => {
  global.wx = createWx()
  wx.setStorageSync('feikong.token', 'tok-1')
})

test('a typed code (spaces trimmed) is posted, then the tenant is taken to their accounts', async () => {
  wx.serve(routes({ 'POST /bindings': json(201, BOUND) }))
  const { comp, page } = mountPage('pages/bind/bind')
  comp.querySelector('.code').dispatchEvent('input', { detail: { value: ' K7Q2-9XZM ' } })
  await simulate.sleep(0)
  expect(page.data.code).toBe(' K7Q2-9XZM ')
  await expect(page.submit()).resolves.toEqual(BOUND)
  expect(wx.requests).toEqual([expect.objectContaining({
    method: 'POST', path: '/bindings', data: { code: 'K7Q2-9XZM' },
    header: expect.objectContaining({ Authorization: 'Bearer tok-1' })
  })])
  expect(wx.toasts).toEqual([{ title: '绑定成功', icon: 'success' }])
  expect(wx.navigations).toEqual([{ kind: 'reLaunch', url: '/pages/home/home' }])
})

test('a scanned QR code\'s text is posted as it reads (the API takes the QR text as the code)', async () => {
  wx.serve(routes({ 'POST /bindings': json(201, BOUND) }))
  wx.scanResult = 'feikong://bind?code=K7Q2-9XZM'
  const { comp } = mountPage('pages/bind/bind')
  await tap(comp.querySelector('.btn-plain'))
  await simulate.sleep(0)
  expect(wx.requests.map(r => [r.method, r.path, r.data])).toEqual([['POST', '/bindings', { code: 'feikong://bind?code=K7Q2-9XZM' }]])
  expect(wx.navigations).toEqual([{ kind: 'reLaunch', url: '/pages/home/home' }])
})

test('a refused code shows the API\'s Chinese message and stays on the page', async () => {
  wx.serve(routes({ 'POST /bindings': error(400, 'binding_code_invalid', '绑定码无效或已过期') }))
  const { page } = mountPage('pages/bind/bind')
  page.onInput({ detail: { value: 'WRONG1' } })
  await expect(page.submit()).resolves.toBeNull()
  expect(wx.requests.map(r => r.data)).toEqual([{ code: 'WRONG1' }])
  expect(wx.toasts).toEqual([{ title: '绑定码无效或已过期', icon: 'none', duration: 2500 }])
  expect(wx.navigations).toEqual([])
  expect(page.data.busy).toBe(false)
})

test('an empty code and a cancelled scan send nothing', async () => {
  wx.serve(routes({ 'POST /bindings': json(201, BOUND) }))
  const { page } = mountPage('pages/bind/bind')
  page.onInput({ detail: { value: '   ' } })
  await expect(page.submit()).resolves.toBeNull()
  expect(wx.toasts.map(t => t.title)).toEqual(['请输入绑定码'])
  wx.scanResult = null
  await expect(page.scan()).resolves.toBeNull()
  expect(wx.scans).toBe(1)
  expect(wx.requests).toEqual([])
})

test('a code in the page\'s launch options is filled in', () => {
  const { page } = mountPage('pages/bind/bind')
  page.onLoad({ code: 'K7Q2-9XZM' })
  expect(page.data.code).toBe('K7Q2-9XZM')
})

// --- 手机号验证: room + phone, a code by SMS, then the code typed back -----------------------------

const SENT = { message: '若手机号与房间登记信息一致，验证码已发送', resend_after: 60, expires_in: 300 }

function phonePage(options = { property: 'p1' }) {
  const mounted = mountPage('pages/bind/bind')
  mounted.page.onLoad(options)
  return mounted
}

test('a property link opens the phone tab; the code is asked for, the countdown runs, the code binds', async () => {
  wx.serve(routes({ 'POST /bindings/phone-code': json(200, SENT), 'POST /bindings/phone': json(201, BOUND) }))
  const { comp, page } = phonePage()
  await simulate.sleep(0)
  expect(page.data.mode).toBe('phone')
  expect(comp.querySelector('.field-property')).toBeFalsy() // the property came with the link
  comp.querySelector('.field-room').dispatchEvent('input', { detail: { value: ' B-201 ' } })
  comp.querySelector('.field-phone').dispatchEvent('input', { detail: { value: '+86 139 1234 5678' } })
  await simulate.sleep(0)
  await expect(page.sendCode()).resolves.toEqual(SENT)
  expect(wx.requests.map(r => [r.method, r.path, r.data])).toEqual([
    ['POST', '/bindings/phone-code', { property_id: 'p1', room: 'B-201', phone: '13912345678' }]])
  expect(page.data.countdown).toBe(60)
  expect(page.data.sent).toBe(SENT.message)
  await simulate.sleep(0)
  expect(comp.querySelector('.btn-send').dom.textContent.trim()).toBe('60 秒后重新获取')
  await expect(page.sendCode()).resolves.toBeNull() // no second request while counting down
  expect(wx.requests).toHaveLength(1)
  page.tick()
  expect(page.data.countdown).toBe(59)

  page.onField({ currentTarget: { dataset: { field: 'otp' } }, detail: { value: '012345' } })
  await expect(page.submitPhone()).resolves.toEqual(BOUND)
  expect(wx.requests[1]).toEqual(expect.objectContaining({
    method: 'POST', path: '/bindings/phone',
    data: { property_id: 'p1', room: 'B-201', phone: '13912345678', code: '012345' },
    header: expect.objectContaining({ Authorization: 'Bearer tok-1' })
  }))
  expect(wx.toasts).toEqual([{ title: '绑定成功', icon: 'success' }])
  expect(wx.navigations).toEqual([{ kind: 'reLaunch', url: '/pages/home/home' }])
  page.onUnload()
})

test('the countdown ends after 60 ticks and the code may be asked for again', async () => {
  wx.serve(routes({ 'POST /bindings/phone-code': json(200, SENT) }))
  const { page } = phonePage()
  page.setData({ room: 'B-201', phone: '13912345678' })
  await page.sendCode()
  for (let i = 0; i < 60; i++) page.tick()
  expect(page.data.countdown).toBe(0)
  await expect(page.sendCode()).resolves.toEqual(SENT)
  expect(wx.requests).toHaveLength(2)
  page.onUnload()
})

test('a wrong code shows the API\'s message and stays; too soon starts the countdown from the message', async () => {
  wx.serve(routes({
    'POST /bindings/phone-code': error(429, 'phone_code_too_soon', '验证码已发送，请 42 秒后再重新获取'),
    'POST /bindings/phone': error(400, 'phone_code_wrong', '验证码错误，还可以再试 4 次')
  }))
  const { page } = phonePage()
  page.setData({ room: 'B-201', phone: '13912345678', otp: '111111' })
  await expect(page.sendCode()).resolves.toBeNull()
  expect(page.data.countdown).toBe(42)
  await expect(page.submitPhone()).resolves.toBeNull()
  expect(wx.toasts.map(t => t.title)).toEqual(['验证码已发送，请 42 秒后再重新获取', '验证码错误，还可以再试 4 次'])
  expect(wx.navigations).toEqual([])
  expect(page.data.busy).toBe(false)
  page.onUnload()
})

test('missing or malformed fields are refused on the page: nothing sent', async () => {
  wx.serve(routes({}))
  const { page } = phonePage({ tab: 'phone' })
  expect(page.data.mode).toBe('phone')
  page.setData({ room: 'B-201', phone: '13912345678' })
  await expect(page.sendCode()).resolves.toBeNull() // no property in the link, none typed
  page.setData({ propertyId: 'p1', phone: '12345' })
  await expect(page.sendCode()).resolves.toBeNull()
  page.setData({ phone: '13912345678', otp: '12a' })
  await expect(page.submitPhone()).resolves.toBeNull()
  expect(wx.toasts.map(t => t.title)).toEqual(['请填写物业编号', '请填写 11 位手机号', '请输入短信中的 6 位验证码'])
  expect(wx.requests).toEqual([])
})

test('the tabs switch between the binding code and the phone', async () => {
  const { comp, page } = mountPage('pages/bind/bind')
  expect(page.data.mode).toBe('code')
  await tap(comp.querySelector('.tab-phone'))
  expect(page.data.mode).toBe('phone')
  expect(comp.querySelector('.field-property')).toBeTruthy() // no property link: typed in
  expect(comp.querySelector('.code')).toBeFalsy()
})
