// VM page: follow the VM's state without reloading. The badge and the action buttons
// (all on the page, those that don't fit hidden) change as libvirt's state changes;
// what only the host can tell (CPU time, VNC...) is fetched once the page is shown.
(function () {
  "use strict";
  var header = document.getElementById("vm-header");
  if (!header) return;
  var badge = header.querySelector(".vm-state");

  function show(_id, data) {
    badge.textContent = window.loucloudStateLabel(data.state);
    badge.dataset.state = data.state;
    header.dataset.state = data.state;
    header.querySelectorAll(".vm-action").forEach(function (el) {
      el.classList.toggle("d-none", data.actions.indexOf(el.dataset.action) < 0);
    });
    var addresses = document.getElementById("vm-addresses");
    if (addresses && data.addresses && data.addresses.length) {
      addresses.textContent = data.addresses.join(", ");
      addresses.dataset.addresses = data.addresses.join(" ");
    }
  }
  window.loucloudFollow([header.dataset.vm], show);

  var live = header.dataset.liveUrl;
  if (live && document.querySelector("[data-live]")) {
    fetch(live, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        document.querySelectorAll("[data-live]").forEach(function (el) {
          var value = data[el.dataset.live];
          if (value !== undefined && value !== null) el.textContent = value;
        });
      })
      .catch(function () { /* the figures stay as they are */ });
  }
})();
