// VM page: follow the VM's state without a reload; when it changes, show the page again
// (the buttons that fit the new state come with it).
(function () {
  "use strict";
  var header = document.getElementById("vm-header");
  if (!header) return;
  var shown = header.dataset.state;
  var url = header.dataset.stateUrl;
  function poll() {
    fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data && data.state !== shown) { window.location.reload(); return; }
        setTimeout(poll, shown.slice(-1) === "…" ? 1000 : 3000);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 2000);
})();
