// A bar chart drawn with views (no canvas, no chart library): `bars` = [{label, value, text}],
// heights relative to the largest value; tapping a bar fires `select` with {index}.
Component({
  properties: {
    bars: { type: Array, value: [] },
    selected: { type: Number, value: -1 }
  },
  data: { items: [] },
  observers: {
    bars(bars) {
      const max = Math.max(0, ...(bars || []).map(b => Number(b.value) || 0))
      const items = (bars || []).map(b => {
        const v = Number(b.value) || 0
        // a non-zero value keeps a visible sliver
        const pct = max > 0 ? Math.max(v > 0 ? 2 : 0, Math.round((v / max) * 100)) : 0
        return { label: b.label, text: b.text, pct }
      })
      this.setData({ items })
    }
  },
  methods: {
    onTap(e) {
      this.triggerEvent('select', { index: Number(e.currentTarget.dataset.index) })
    }
  }
})
