// Display helpers. Money arrives as integer fen and is never turned into a float here.

function yuan(fen) {
  if (fen === null || fen === undefined || fen === '') return ''
  const n = Number(fen)
  if (!Number.isInteger(n)) return ''
  const sign = n < 0 ? '-' : ''
  const abs = Math.abs(n)
  const cents = String(abs % 100).padStart(2, '0')
  return `${sign}${Math.floor(abs / 100)}.${cents}`
}

// "12", "12.3", "12.34" (yuan typed by a tenant) -> 1234 fen; null if not a valid amount
function fenOf(text) {
  const s = String(text === undefined || text === null ? '' : text).trim()
  const m = /^(\d{1,7})(?:\.(\d{1,2}))?$/.exec(s)
  if (!m) return null
  return Number(m[1]) * 100 + Number((m[2] || '').padEnd(2, '0'))
}

// China keeps one time zone (UTC+8) all year: every time is shown in it, whatever the phone's zone
const CHINA_OFFSET_MS = 8 * 3600 * 1000

function chinaParts(value) {
  const t = value instanceof Date ? value.getTime() : Date.parse(value)
  if (Number.isNaN(t)) return null
  const d = new Date(t + CHINA_OFFSET_MS)
  const p = n => String(n).padStart(2, '0')
  return {
    y: d.getUTCFullYear(), m: p(d.getUTCMonth() + 1), d: p(d.getUTCDate()),
    hh: p(d.getUTCHours()), mm: p(d.getUTCMinutes())
  }
}

// ISO time -> "2026-11-29 08:30" (China time)
function dateTime(value) {
  const x = value ? chinaParts(value) : null
  return x ? `${x.y}-${x.m}-${x.d} ${x.hh}:${x.mm}` : ''
}

// ISO time -> "08:30" (China time)
function clock(value) {
  const x = value ? chinaParts(value) : null
  return x ? `${x.hh}:${x.mm}` : ''
}

// a Date -> "2026-11-29", the day it is in China
function isoDay(date) {
  const x = chinaParts(date)
  return `${x.y}-${x.m}-${x.d}`
}

const SUPPLY_TEXT = { on: '正常供电', pending: '即将停电', cut: '已停电' }

// the supply state in words: {state, text, reason} from the API (a bare state string is tolerated)
function supply(value) {
  const s = typeof value === 'string' ? { state: value } : (value || {})
  const state = s.state || 'on'
  return { state, text: s.text || SUPPLY_TEXT[state] || state, reason: s.reason || '' }
}

// who paid: "我" for the tenant, a roommate's name otherwise
function payer(value) {
  if (!value) return ''
  if (typeof value === 'string') return value
  return value.is_me ? '我' : (value.display_name || '')
}

module.exports = { yuan, fenOf, dateTime, clock, isoDay, supply, payer }
