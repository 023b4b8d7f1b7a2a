// Draws the MRR chart with uPlot over the server's SVG (which stays for pages without
// JavaScript): the figures come from the page itself (data-months, data-values: minor units).
(function () {
  'use strict';
  function draw(box) {
    if (!window.uPlot) return;
    var months = JSON.parse(box.getAttribute('data-months') || '[]');
    var values = JSON.parse(box.getAttribute('data-values') || '[]');
    var currency = box.getAttribute('data-currency') || '';
    if (months.length === 0) return;
    var xs = months.map(function (_, i) { return i; });
    var ys = values.map(function (v) { return v / 100; });
    // Shown before measuring: a hidden box has no width.
    box.hidden = false;
    var money = function (v) { return v == null ? '' : v.toFixed(2) + ' ' + currency; };
    var opts = {
      width: Math.max(320, box.clientWidth - 16),
      height: 280,
      title: box.getAttribute('data-title') || '',
      scales: { x: { time: false } },
      axes: [
        { values: function (_, ticks) { return ticks.map(function (t) { return months[t] || ''; }); } },
        { values: function (_, ticks) { return ticks.map(function (t) { return t.toFixed(0); }); }, size: 70 },
      ],
      series: [
        { label: 'Month', value: function (_, i) { return i == null ? '' : (months[i] || ''); } },
        { label: 'MRR', stroke: '#1d4ed8', width: 2, fill: 'rgba(29, 78, 216, 0.08)', value: function (_, v) { return money(v); } },
      ],
    };
    box.textContent = '';
    new window.uPlot(opts, [xs, ys], box);
    var fallback = document.getElementById(box.getAttribute('data-fallback'));
    if (fallback) fallback.hidden = true;
    box.hidden = false;
  }
  document.addEventListener('DOMContentLoaded', function () {
    var boxes = document.querySelectorAll('[data-uplot]');
    for (var i = 0; i < boxes.length; i += 1) draw(boxes[i]);
  });
})();
