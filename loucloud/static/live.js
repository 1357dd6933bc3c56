// VM lists: every state badge (and the addresses) follows libvirt without a reload.
(function () {
  "use strict";
  var badges = document.querySelectorAll(".vm-state[data-vm]");
  if (!badges.length) return;
  var byId = {};
  badges.forEach(function (b) { (byId[b.dataset.vm] = byId[b.dataset.vm] || []).push(b); });
  window.loucloudFollow(Object.keys(byId), function (id, data) {
    (byId[id] || []).forEach(function (b) {
      b.textContent = window.loucloudStateLabel(data.state);
      b.dataset.state = data.state;
    });
    var row = document.querySelector('[data-vm-row="' + id + '"] [data-addresses]');
    if (row && data.addresses) row.textContent = data.addresses.join(", ") || "\u2014";
  });
})();
