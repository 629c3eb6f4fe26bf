// faregate dashboard: draws the uPlot charts whose data sits in <script type="application/json"> blocks,
// on load and after every htmx swap (the live parts replace their charts' data). No inline script.
(function () {
  "use strict";
  var css = function (name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); };
  // Axis and legend labels only: the page prints the exact figures beside the chart.
  var dollars = function (v) {
    if (v == null) return "";
    var a = Math.abs(v);
    return "$" + (a === 0 ? "0" : a >= 1 ? v.toFixed(2) : v.toPrecision(2));
  };

  function spendChart(el, data) {
    var opts = {
      width: Math.max(el.clientWidth, 280), height: 240,
      series: [
        {},
        { label: "Spend", stroke: css("--spend"), width: 2, fill: css("--spend") + "22", value: function (u, v) { return dollars(v); } },
        { label: "Baseline", stroke: css("--baseline"), width: 2, dash: [6, 4], value: function (u, v) { return dollars(v); } }
      ],
      axes: [
        { stroke: css("--muted"), grid: { stroke: css("--line") } },
        { stroke: css("--muted"), grid: { stroke: css("--line") }, size: 80, values: function (u, vals) { return vals.map(dollars); } }
      ],
      scales: { x: { time: true } }
    };
    return new uPlot(opts, [data.days, data.spend, data.baseline], el);
  }

  function priceChart(el, data) {
    var opts = {
      width: Math.max(el.clientWidth, 200), height: 90, legend: { show: false },
      series: [{}, { label: "input", stroke: css("--spend"), width: 2, paths: uPlot.paths.stepped({ align: 1 }) },
                   { label: "output", stroke: css("--baseline"), width: 2, paths: uPlot.paths.stepped({ align: 1 }) }],
      axes: [{ show: false }, { stroke: css("--muted"), size: 50 }],
      scales: { x: { time: true } }
    };
    return new uPlot(opts, [data.t, data.input, data.output], el);
  }

  var kinds = { spend: spendChart, price: priceChart };

  function draw(root) {
    (root || document).querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.drawn === "1" || typeof uPlot === "undefined") return;
      var source = document.getElementById(el.dataset.source);
      if (!source) return;
      var data = JSON.parse(source.textContent);
      el.textContent = "";
      el.uplot = kinds[el.dataset.chart](el, data);
      el.dataset.drawn = "1";
      el.dataset.points = String((data.days || data.t || []).length);
    });
  }

  function fit() {
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.uplot) el.uplot.setSize({ width: Math.max(el.clientWidth, 200), height: el.uplot.height });
    });
  }

  var pending = null;
  window.addEventListener("resize", function () { clearTimeout(pending); pending = setTimeout(fit, 100); });
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function (e) { draw(e.target); });
})();
