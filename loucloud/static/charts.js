// Charts of a VM or a host from the sampler's store (Chart.js, from the npm registry).
(function () {
  "use strict";
  var root = document.getElementById("charts");
  if (!root || !window.Chart) return;
  var range = "hour";
  var charts = {};
  var PALETTE = ["#0d6efd", "#fd7e14", "#20c997", "#d63384"];
  var SERIES = {
    vm: {
      cpu: [["CPU %", "cpu_percent"]],
      memory: [[t("Memory MiB"), "memory_used_mib"]],
      disk: [[t("Read"), "disk_read_bps"], [t("Write"), "disk_write_bps"]],
      net: [[t("Received"), "net_rx_bps"], [t("Sent"), "net_tx_bps"]]
    },
    host: {
      cpu: [["CPU %", "cpu_percent"]],
      memory: [[t("Used MiB"), "memory_used_mib"], [t("Total MiB"), "memory_total_mib"]],
      vms: [[t("Running domains"), "domains_running"], [t("LouCloud VMs"), "vms"]]
    }
  }[root.dataset.kind];

  function label(iso) {
    var d = new Date(iso);
    return range === "hour" ? d.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: "2-digit"})
      : d.toLocaleString([], {weekday: "short", hour: "2-digit", minute: "2-digit"});
  }

  function draw(data) {
    var empty = root.querySelector(".chart-empty");
    if (empty) empty.classList.toggle("d-none", data.t.length > 0);
    root.querySelectorAll("canvas[data-series]").forEach(function (canvas) {
      var name = canvas.dataset.series;
      var datasets = SERIES[name].map(function (s, i) {
        return {label: s[0], data: data[s[1]], borderColor: PALETTE[i], backgroundColor: PALETTE[i],
                pointRadius: 0, borderWidth: 2, spanGaps: false, tension: 0.2};
      });
      var labels = data.t.map(label);
      if (charts[name]) {
        charts[name].data.labels = labels;
        charts[name].data.datasets = datasets;
        charts[name].update("none");
      } else {
        charts[name] = new Chart(canvas, {
          type: "line", data: {labels: labels, datasets: datasets},
          options: {animation: false, maintainAspectRatio: false, responsive: true,
                    interaction: {mode: "index", intersect: false},
                    scales: {y: {beginAtZero: true}, x: {ticks: {maxTicksLimit: 8}}},
                    plugins: {legend: {display: datasets.length > 1}}}
        });
      }
    });
    root.dataset.points = String(data.t.length);
  }

  function load() {
    fetch(root.dataset.url + "?range=" + range, {headers: {Accept: "application/json"},
                                                  credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) draw(data); })
      .catch(function () { /* the next refresh tries again */ });
  }

  document.querySelectorAll(".chart-range").forEach(function (b) {
    b.addEventListener("click", function () {
      document.querySelectorAll(".chart-range").forEach(function (o) { o.classList.remove("active"); });
      b.classList.add("active");
      range = b.dataset.range;
      load();
    });
  });
  load();
  setInterval(load, Math.max(2, parseInt(root.dataset.refresh, 10) || 10) * 1000);
})();
