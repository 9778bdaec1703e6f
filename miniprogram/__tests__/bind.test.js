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
