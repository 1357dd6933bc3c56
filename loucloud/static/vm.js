// VM page: follow the VM's state without reloading. The badge and the action buttons
// (all on the page, those that don't fit hidden) change as libvirt's state changes.
(function () {
  "use strict";
  var header = document.getElementById("vm-header");
  if (!header) return;
  var url = header.dataset.stateUrl;
  var badge = header.querySelector(".vm-state");
  var leaving = false;
  document.addEventListener("submit", function () { leaving = true; });
  window.addEventListener("beforeunload", function () { leaving = true; });

  function show(data) {
    badge.textContent = data.state;
    badge.dataset.state = data.state;
    header.dataset.state = data.state;
    header.querySelectorAll(".vm-action").forEach(function (el) {
      el.classList.toggle("d-none", data.actions.indexOf(el.dataset.action) < 0);
    });
  }

  function poll() {
    if (leaving) return;
    fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) {
        if (r.status === 404) { if (!leaving) window.location.assign("/"); return null; }
        return r.ok ? r.json() : undefined;
      })
      .then(function (data) {
        if (data === null || leaving) return;
        if (data) show(data);
        var busy = data && data.state.slice(-1) === "\u2026";
        setTimeout(poll, busy ? 1000 : 2000);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 2000);
})();
