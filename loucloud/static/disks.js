// VM page, Disks card (issue 14): each disk's allocation, and a resize waiting for the
// next boot, asked from the host once the page is shown (hardware.json).
(function () {
  "use strict";
  var card = document.getElementById("vm-disks");
  if (!card || !card.dataset.hardwareUrl) return;
  function show(name, text) {
    var el = card.querySelector("[data-hardware='" + name + "']");
    if (!el) return;
    el.textContent = text || "";
    el.classList.toggle("d-none", !text);
  }
  fetch(card.dataset.hardwareUrl, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
    .then(function (r) { return r.ok ? r.json() : null; })
    .then(function (data) {
      if (!data) return;
      if (data.error) { show("error", data.error); }
      show("pending", data.pending);
      var disks = data.disks || {};
      card.querySelectorAll("[data-allocation]").forEach(function (el) {
        var d = disks[el.dataset.allocation];
        if (!d) { el.textContent = "—"; return; }
        el.textContent = d.found
          ? t("%(allocation)s of %(capacity)s", {allocation: d.allocation_gib, capacity: d.capacity_gib})
          : t("volume missing");
        if (d.held) {
          el.textContent += " · " + t("still held by the running guest (it has not let go)");
        }
      });
    })
    .catch(function () { /* the figures stay as they are */ });
})();
