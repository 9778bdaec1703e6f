const format = require('../utils/format')

test('fen become yuan strings without floating point', () => {
  expect(format.yuan(0)).toBe('0.00')
  expect(format.yuan(5)).toBe('0.05')
  expect(format.yuan(1230)).toBe('12.30')
  expect(format.yuan(-1234)).toBe('-12.34')
  expect(format.yuan(-5)).toBe('-0.05')
  expect(format.yuan(100000)).toBe('1000.00')
  expect(format.yuan(null)).toBe('')
})

test('typed yuan become fen, and anything else is refused', () => {
  expect(format.fenOf('12')).toBe(1200)
  expect(format.fenOf('12.3')).toBe(1230)
  expect(format.fenOf(' 0.01 ')).toBe(1)
  expect(format.fenOf('0.29')).toBe(29) // 0.29 * 100 is 28.999999999999996 in floating point
  expect(format.fenOf('12.345')).toBeNull()
  expect(format.fenOf('-5')).toBeNull()
  expect(format.fenOf('abc')).toBeNull()
  expect(format.fenOf('')).toBeNull()
})

test('times are shown in China time whatever the offset they carry', () => {
  expect(format.dateTime('2026-11-29T00:30:00+00:00')).toBe('2026-11-29 08:30')
  expect(format.dateTime('2026-11-29T23:59:00+08:00')).toBe('2026-11-29 23:59')
  expect(format.dateTime('2026-11-30T17:05:00Z')).toBe('2026-12-01 01:05')
  expect(format.clock('2026-11-29T02:03:00Z')).toBe('10:03')
  expect(format.isoDay(new Date('2026-12-31T16:00:00Z'))).toBe('2027-01-01')
  expect(format.dateTime('')).toBe('')
})

test('supply states and payers in words', () => {
  expect(format.supply({ state: 'cut', text: '已停电', reason: '余额不足' })).toEqual({ state: 'cut', text: '已停电', reason: '余额不足' })
  expect(format.supply('pending')).toEqual({ state: 'pending', text: '即将停电', reason: '' })
  expect(format.payer({ display_name: '李四', is_me: false })).toBe('李四')
  expect(format.payer({ display_name: '张三', is_me: true })).toBe('我')
  expect(format.payer(null)).toBe('')
})
