// Pages under test: the page JS is loaded with a `Page` global that captures its
// definition; the definition's data and methods are then mounted with the page's own WXML
// (and its usingComponents) by miniprogram-simulate, so one object is both the page
// instance (this.data, this.setData, its handlers) and the rendered tree.
const fs = require('fs')
const path = require('path')
const simulate = require('miniprogram-simulate')

const ROOT = path.resolve(__dirname, '../..')

function read(file) {
  return fs.readFileSync(path.join(ROOT, file), 'utf8')
}

// a component by its path from the mini-program's root, loaded once. The official WXML
// compiler runs on the whole mini-program (rootPath): with one root per component its
// templates, all named index.wxml, would overwrite one another.
const loaded = {}
function loadComponent(p, tag) {
  const key = `${p}|${tag}`
  if (!loaded[key]) loaded[key] = simulate.load(path.join(ROOT, p), tag, { rootPath: ROOT })
  return loaded[key]
}

function mountPage(route) {
  let definition = null
  global.Page = d => { definition = d }
  global.getApp = () => ({ globalData: {} })
  jest.isolateModules(() => { require(path.join(ROOT, route)) })
  if (!definition) throw new Error(`${route} did not call Page()`)

  const json = JSON.parse(read(`${route}.json`))
  const usingComponents = {}
  for (const [tag, p] of Object.entries(json.usingComponents || {})) {
    usingComponents[tag] = loadComponent(p, tag)
  }
  const methods = {}
  for (const [key, value] of Object.entries(definition)) {
    if (typeof value === 'function') methods[key] = value
  }
  const id = simulate.load({
    template: read(`${route}.wxml`),
    data: JSON.parse(JSON.stringify(definition.data || {})),
    methods,
    usingComponents
  })
  const comp = simulate.render(id)
  comp.attach(document.createElement('parent-wrapper'))
  return { comp, page: comp.instance, definition }
}

// the text a tenant sees, whitespace collapsed
function textOf(node) {
  return (node.dom || node).textContent.replace(/\s+/g, ' ').trim()
}

// DOM elements under node with a class, as written in the WXML (simulate prefixes classes
// with the component's tag: "card" renders as "balance-card--card")
function find(node, cls) {
  return Array.from((node.dom || node).querySelectorAll('*'))
    .filter(el => Array.from(el.classList).some(c => c === cls || c.endsWith(`--${cls}`)))
}

// taps a node found by j-component's selector; its handlers run asynchronously
async function tap(node) {
  node.dispatchEvent('tap')
  await simulate.sleep(0)
}

module.exports = { mountPage, loadComponent, textOf, find, tap, ROOT }
