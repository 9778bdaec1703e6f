/* 用量: usage and cost by day (a month), month (a year) or year, with the time-of-use split,
   from GET /accounts/<id>/usage; an ECharts stacked bar chart (static/vendor/echarts.min.js). */
(function () {
  "use strict";
  var el = FK.el;
  var BANDS = [["sharp", "尖", "#c8372d"], ["peak", "峰", "#e08a1e"], ["flat", "平", "#2b8a72"], ["valley", "谷", "#4a7fc1"]];
  var state = {granularity: "day", offset: 0}, ctx = null, chart = null, asked = 0;

  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function lastDay(y, m) { return new Date(Date.UTC(y, m, 0)).getUTCDate(); } /* m: 1..12 */

  function range() {
    var today = FK.today(), y = Number(today.slice(0, 4)), m = Number(today.slice(5, 7));
    var start, end, label;
    if (state.granularity === "day") {
      var k = y * 12 + (m - 1) + state.offset, yy = Math.floor(k / 12), mm = k % 12 + 1;
      start = yy + "-" + pad(mm) + "-01";
      end = yy + "-" + pad(mm) + "-" + pad(lastDay(yy, mm));
      label = yy + "年" + mm + "月";
    } else if (state.granularity === "month") {
      var yr = y + state.offset;
      start = yr + "-01-01"; end = yr + "-12-31"; label = yr + "年";
    } else {
      start = (y - 4) + "-01-01"; end = y + "-12-31"; label = (y - 4) + " – " + y + " 年";
    }
    if (end > today) end = today;
    return {start: start, end: end, label: label};
  }

  function periodLabel(p) {
    if (state.granularity === "day") return Number(p.slice(8, 10)) + "日";
    if (state.granularity === "month") return Number(p.slice(5, 7)) + "月";
    return p;
  }

  function num(x) { var n = parseFloat(x); return isFinite(n) ? n : 0; }

  function draw(data) {
    var points = data.points || [];
    var box = FK.$("#usage-chart"), empty = FK.$("#usage-empty");
    var used = points.some(function (p) { return num(p.electricity_kwh) > 0 || num(p.water_m3) > 0 || p.cost_fen > 0; });
    empty.hidden = used;
    box.hidden = !used;
    box.dataset.points = String(points.length);
    if (!used) { if (chart) chart.clear(); return; }
    if (!chart) chart = echarts.init(box, null, {renderer: "canvas"});
    var present = BANDS.filter(function (b) {
      return points.some(function (p) { return (p.bands || []).some(function (x) { return x.band === b[0] && num(x.quantity) > 0; }); });
    });
    var series = present.length ? present.map(function (b) {
      return {name: b[1], type: "bar", stack: "kwh", itemStyle: {color: b[2]}, barMaxWidth: 18,
              data: points.map(function (p) {
                var x = (p.bands || []).filter(function (y) { return y.band === b[0]; })[0];
                return x ? num(x.quantity) : 0;
              })};
    }) : [{name: "用电", type: "bar", itemStyle: {color: "#2b8a72"}, barMaxWidth: 18,
           data: points.map(function (p) { return num(p.electricity_kwh); })}];
    series.push({name: "费用", type: "line", yAxisIndex: 1, showSymbol: false, itemStyle: {color: "#6b7580"},
                 data: points.map(function (p) { return (p.cost_fen || 0) / 100; })});
    chart.setOption({
      animation: false,
      grid: {left: 8, right: 8, top: 36, bottom: 4, containLabel: true},
      legend: {top: 0, itemWidth: 12, itemHeight: 8, textStyle: {fontSize: 11}},
      tooltip: {trigger: "axis", confine: true, valueFormatter: function (v) { return String(Math.round(v * 100) / 100); }},
      xAxis: {type: "category", data: points.map(function (p) { return periodLabel(p.period); }),
              axisLabel: {fontSize: 10, hideOverlap: true}, axisTick: {show: false}},
      yAxis: [{type: "value", name: "kWh", nameTextStyle: {fontSize: 10}, axisLabel: {fontSize: 10},
               splitLine: {lineStyle: {color: "#eef0f2"}}},
              {type: "value", name: "元", nameTextStyle: {fontSize: 10}, axisLabel: {fontSize: 10}, splitLine: {show: false}}],
      series: series
    }, true);
  }

  function totals(data) {
    var t = data.totals || {}, box = FK.$("#totals");
    var bands = t.bands || [];
    var max = Math.max.apply(null, [0].concat(bands.map(function (b) { return num(b.quantity); })));
    box.replaceChildren(el("div", {},
      el("h2", {"class": "card-title"}, "合计"),
      el("div", {"class": "totals"},
         el("div", {}, el("div", {"class": "v", id: "total-kwh"}, t.electricity_kwh || "0"), el("div", {"class": "k"}, "用电 kWh")),
         el("div", {}, el("div", {"class": "v", id: "total-m3"}, t.water_m3 || "0"), el("div", {"class": "k"}, "用水 m³")),
         el("div", {}, el("div", {"class": "v", id: "total-cost"}, "¥" + FK.yuan(t.cost_fen || 0)), el("div", {"class": "k"}, "费用"))),
      bands.length ? el("ul", {"class": "bands", id: "bands", "aria-label": "分时用电"}, ...bands.map(function (b) {
        var color = (BANDS.filter(function (x) { return x[0] === b.band; })[0] || [0, 0, "#999"])[2];
        var width = max > 0 ? Math.round(num(b.quantity) / max * 100) : 0;
        return el("li", {dataset: {band: b.band}}, el("span", {}, b.band_text || b.band),
                  el("span", {"class": "bar"}, el("i", {style: "width:" + width + "%;background:" + color})),
                  el("span", {"class": "val"}, b.quantity + " kWh · ¥" + FK.yuan(b.cost_fen || 0)));
      })) : null));
  }

  async function load() {
    var r = range(), mine = ++asked, g = state.granularity;
    FK.$("#usage-chart").dataset.loaded = "";
    FK.$("#period-label").textContent = r.label;
    FK.$("#next").disabled = state.offset >= 0 || state.granularity === "year";
    FK.$("#prev").disabled = state.granularity === "year";
    document.querySelectorAll(".segmented button").forEach(function (b) {
      b.setAttribute("aria-selected", String(b.dataset.granularity === state.granularity));
    });
    try {
      var data = await FK.api("GET", "/accounts/" + encodeURIComponent(ctx.account.account_id) + "/usage?granularity=" +
                              state.granularity + "&start=" + r.start + "&end=" + r.end);
      if (mine !== asked) return; /* another period was asked for meanwhile */
      draw(data);
      totals(data);
      FK.$("#usage-chart").dataset.loaded = g + ":" + r.start;
    } catch (e) {
      if (e.leaving) return;
      FK.toast(e.message, "bad");
    }
  }

  document.querySelectorAll(".segmented button").forEach(function (b) {
    b.addEventListener("click", function () { state = {granularity: b.dataset.granularity, offset: 0}; if (ctx) load(); });
  });
  FK.$("#prev").addEventListener("click", function () { state.offset -= 1; if (ctx) load(); });
  FK.$("#next").addEventListener("click", function () { if (state.offset < 0) { state.offset += 1; if (ctx) load(); } });
  window.addEventListener("resize", function () { if (chart) chart.resize(); });

  FK.withAccount("usage", function (c) { ctx = c; return load(); });
})();
