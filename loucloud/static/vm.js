// VM page: follow the VM's state without a reload; when it changes, show the page again
// (the buttons that fit the new state come with it). Never while the user's own form is
// on its way, and a VM that is gone sends the user back to the list.
(function () {
  "use strict";
  var header = document.getElementById("vm-header");
  if (!header) return;
  var shown = header.dataset.state;
  var url = header.dataset.stateUrl;
  var leaving = false;
  document.addEventListener("submit", function () { leaving = true; });
  window.addEventListener("beforeunload", function () { leaving = true; });
  function poll() {
    if (leaving) return;
    fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) {
        if (r.status === 404) { if (!leaving) window.location.assign("/"); return null; }
        return r.ok ? r.json() : undefined;
      })
      .then(function (data) {
        if (data === null || leaving) return;
        if (data && data.state !== shown) { window.location.reload(); return; }
        setTimeout(poll, shown.slice(-1) === "\u2026" ? 1000 : 3000);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 2000);
})();
