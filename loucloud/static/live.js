// VM lists: every state badge (and addresses) follows libvirt without a reload (one request for the
// whole page; the server shares each host's states between pages for a second).
(function () {
  "use strict";
  var badges = document.querySelectorAll(".vm-state[data-vm]");
  if (!badges.length) return;
  var byId = {};
  badges.forEach(function (b) { (byId[b.dataset.vm] = byId[b.dataset.vm] || []).push(b); });
  var url = "/vms/states.json?ids=" + Object.keys(byId).join(",");
  function poll() {
    fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data) {
          Object.keys(data).forEach(function (id) {
            (byId[id] || []).forEach(function (b) {
              b.textContent = data[id].state;
              b.dataset.state = data[id].state;
            });
            var row = document.querySelector('[data-vm-row="' + id + '"] [data-addresses]');
            if (row && data[id].addresses) {
              row.textContent = data[id].addresses.join(", ") || "\u2014";
            }
          });
        }
        setTimeout(poll, 2000);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 2000);
})();
