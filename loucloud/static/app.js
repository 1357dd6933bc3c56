// LouCloud's small page helpers. No inline scripts anywhere (the CSP forbids them).

// t("text", {name: value}): the text in the reader's language, from the JSON that
// base.html writes (loucloud/i18n.py: every t("...") of these scripts, translated),
// with its %(name)s filled in.
window.t = (function () {
  var messages = null;
  return function (text, values) {
    if (messages === null) {
      var el = document.getElementById("lc-messages");
      try { messages = el ? JSON.parse(el.textContent) : {}; } catch (e) { messages = {}; }
    }
    var said = messages[text] || text;
    return said.replace(/%\((\w+)\)s/g, function (whole, name) {
      return values && Object.prototype.hasOwnProperty.call(values, name) ? values[name] : whole;
    });
  };
})();

(function () {
  "use strict";

  // Progress bars: widths come from data-width (inline styles are not allowed by the CSP).
  function applyWidths(root) {
    root.querySelectorAll(".progress-bar[data-width]").forEach(function (bar) {
      var pct = Math.max(0, Math.min(100, parseFloat(bar.dataset.width) || 0));
      bar.style.width = pct + "%";
      var outer = bar.closest(".progress");
      if (outer) outer.setAttribute("aria-valuenow", String(Math.round(pct)));
    });
  }

  // Forms with data-confirm ask in a modal before they are sent.
  function setupConfirm() {
    var modalEl = document.getElementById("confirm-modal");
    if (!modalEl || !window.bootstrap) return;
    var modal = new bootstrap.Modal(modalEl);
    var pending = null;
    document.addEventListener("submit", function (ev) {
      var form = ev.target;
      if (!form.dataset || !form.dataset.confirm || form.dataset.confirmed === "1") return;
      ev.preventDefault();
      pending = form;
      document.getElementById("confirm-body").textContent = form.dataset.confirm;
      modal.show();
    }, true);
    document.getElementById("confirm-ok").addEventListener("click", function () {
      if (!pending) return;
      var form = pending;
      pending = null;
      form.dataset.confirmed = "1";
      modal.hide();
      if (form.requestSubmit) form.requestSubmit(); else form.submit();
    });
  }

  function setupBack() {
    document.querySelectorAll(".js-back").forEach(function (a) {
      a.addEventListener("click", function (ev) {
        if (window.history.length > 1) { ev.preventDefault(); window.history.back(); }
      });
    });
  }

  // Long actions (creating a VM): the button shows progress and can't be sent twice.
  function setupBusyButtons() {
    document.addEventListener("submit", function (ev) {
      if (ev.defaultPrevented) return;
      var button = ev.target.querySelector("button[data-busy-text]");
      if (!button) return;
      setTimeout(function () {
        button.disabled = true;
        var spinner = button.querySelector(".spinner-border");
        if (spinner) spinner.classList.remove("d-none");
        button.lastChild.textContent = " " + button.dataset.busyText;
      }, 0);
    });
  }

  // Buttons with data-copy="#selector" copy that field's value (a secret shown once).
  function setupCopy() {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var field = document.querySelector(button.dataset.copy);
        if (!field) return;
        field.select();
        var done = function () { button.lastChild.textContent = " " + t("Copied"); };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(field.value).then(done, function () {});
        } else if (document.execCommand && document.execCommand("copy")) {
          done();
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    applyWidths(document);
    setupCopy();
    setupConfirm();
    setupBusyButtons();
    setupBack();
  });
  window.LouCloud = { applyWidths: applyWidths };
})();
