// Follow VMs' states: pushed by the server (server-sent events from the watcher's
// store) while a watcher runs; polled from states.json when none does (the server says
// so with a "poll" event) or when the browser cannot keep the stream.

// A state as the reader reads it: the labels are services/vms/views.py's STATE_LABELS,
// which base.html writes as JSON; the badges say it so, their data-state keeps the state
// itself. "starting…" too.
window.loucloudStateLabel = (function () {
  "use strict";
  var labels = null;
  return function label(state) {
    if (!state) return state;
    if (state.slice(-1) === "\u2026") return label(state.slice(0, -1)) + "\u2026";
    if (labels === null) {
      var el = document.getElementById("lc-states");
      try { labels = el ? JSON.parse(el.textContent) : {}; } catch (e) { labels = {}; }
    }
    return Object.prototype.hasOwnProperty.call(labels, state) ? labels[state] : state;
  };
})();

window.loucloudFollow = function (ids, show) {
  "use strict";
  var query = ids.length ? "?ids=" + ids.join(",") : "";
  var polling = false;
  function poll() {
    fetch("/vms/states.json" + (query || "?ids="), {headers: {"Accept": "application/json"},
                                                   credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data) Object.keys(data).forEach(function (id) { show(id, data[id]); });
        setTimeout(poll, 2000);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  function startPolling() {
    if (polling) return;
    polling = true;
    setTimeout(poll, 2000);
  }
  if (!window.EventSource) { startPolling(); return; }
  var failures = 0;
  var source = new EventSource("/vms/events" + query);
  source.onmessage = function (event) {
    failures = 0;
    JSON.parse(event.data).forEach(function (vm) { show(String(vm.id), vm); });
  };
  source.addEventListener("poll", function () { source.close(); startPolling(); });
  source.onerror = function () {
    if (++failures >= 3) { source.close(); startPolling(); }
  };
};
