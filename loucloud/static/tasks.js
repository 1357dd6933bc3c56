// Pages that show tasks follow them while one is queued or running: every 2 s they read
// the JSON, move the progress bars and messages in place, and reload the page when a
// task changes state (its buttons and result change too).
(function () {
  "use strict";
  var el = document.querySelector("[data-follow]");
  if (!el) return;
  function list(j) { return j.tasks || (j.id !== undefined ? [j] : []); }
  function states(j) {
    return list(j).map(function (t) { return t.id + ":" + t.state; }).join(",") +
      "|" + (j.copies || []).map(function (c) { return c.host + ":" + c.state; }).join(",");
  }
  function update(t) {
    document.querySelectorAll('[data-task="' + t.id + '"]').forEach(function (row) {
      var pct = Math.floor(t.progress * 100);
      var bar = row.querySelector(".progress-bar");
      if (bar) { bar.style.width = pct + "%"; bar.textContent = pct + " %";
                 bar.parentElement.setAttribute("aria-valuenow", String(pct)); }
      var msg = row.querySelector('[data-field="message"]');
      // A page with a field of its own for the error (the task's page) keeps them apart.
      var own = row.querySelector('[data-field="error"]');
      if (msg) msg.textContent = own ? t.message : (t.error || t.message);
      var rem = row.querySelector('[data-field="remaining"]');
      if (rem) rem.textContent = t.remaining_seconds ? window.t("about %(seconds)s s", {seconds: t.remaining_seconds}) : "—";
    });
  }
  function copies(j) {
    (j.copies || []).forEach(function (c) {
      var row = document.querySelector('[data-copy-host="' + c.host + '"]');
      if (!row || !c.total) return;
      var pct = Math.floor(100 * c.copied / c.total);
      var bar = row.querySelector(".progress-bar");
      if (bar) { bar.style.width = pct + "%"; bar.textContent = pct + " %"; }
    });
  }
  // The state a task's badge was drawn with: a task that moved on between the page's
  // drawing and the first answer (it finished meanwhile) reloads the page too, or it
  // would show "running" for ever (the polls stop when nothing is busy).
  function drawnOtherwise(j) {
    return list(j).some(function (t) {
      var badge = document.querySelector('[data-task="' + t.id + '"] .task-state');
      return badge && badge.dataset.state !== t.state;
    });
  }
  var first = null;
  function poll() {
    fetch(el.dataset.follow, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (j) {
        if (!j) return;
        var now = states(j);
        if (first !== null ? now !== first : drawnOtherwise(j)) { window.location.reload(); return; }
        first = now;
        list(j).forEach(update);
        copies(j);
        var busy = list(j).some(function (t) { return t.state === "queued" || t.state === "running"; });
        if (busy) setTimeout(poll, 2000);
      }).catch(function () { setTimeout(poll, 5000); });
  }
  poll();
})();
