// Uploading an image in chunks, resumable: the server says its offset; after a dropped
// connection the script asks it again and goes on from there.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form) return;
  var csrf = document.querySelector("meta[name=csrf-token]").content;
  var fileInput = form.querySelector("input[type=file]");
  var nameInput = form.querySelector("input[name=name]");
  var facts = document.getElementById("file-facts");
  var bar = document.querySelector("#upload-progress .progress-bar");
  var status = document.getElementById("upload-status");
  var errorBox = document.getElementById("upload-error");
  var startBtn = document.getElementById("upload-start");
  var cancelBtn = document.getElementById("upload-cancel");
  var current = null, stopped = false;

  function show(el, on) { el.classList.toggle("d-none", !on); }
  function fail(text) { errorBox.textContent = text; show(errorBox, true); }
  function human(n) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  }
  function duration(s) {
    if (!isFinite(s)) return "…";
    s = Math.round(s);
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }
  function setBar(pct) {
    bar.dataset.width = pct;
    bar.style.width = pct + "%";
    bar.parentElement.setAttribute("aria-valuenow", String(Math.round(pct)));
  }
  function request(method, url, body, type) {
    var headers = { "X-CSRFToken": csrf, "Accept": "application/json" };
    if (type) headers["Content-Type"] = type;
    return fetch(url, { method: method, headers: headers, body: body, credentials: "same-origin" })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (j) {
          j._status = r.status; return j;
        });
      });
  }
  function sleep(ms) { return new Promise(function (ok) { setTimeout(ok, ms); }); }

  fileInput.addEventListener("change", function () {
    var file = fileInput.files[0];
    show(errorBox, false);
    if (!file) return;
    if (!nameInput.value) nameInput.value = file.name.replace(/\.(qcow2?|img|raw|iso)$/i, "").slice(0, 64);
    var head = file.slice(0, 34816);
    request("POST", form.dataset.inspect + "?filename=" + encodeURIComponent(file.name), head,
            "application/octet-stream").then(function (j) {
      var text = human(file.size) + (j.format ? ", " + j.format : "");
      if (j.volume_id) text = t("%(facts)s, volume id “%(id)s”", {facts: text, id: j.volume_id});
      if (j.os_name) text = t("%(facts)s: looks like %(os)s", {facts: text, os: j.os_name});
      facts.textContent = text;
      if (j.problem) fail(t("%(problem)s LouCloud will refuse it.", {problem: j.problem}));
      var osSel = form.querySelector("select[name=os_type]");
      if (j.os_type && osSel.value === "auto") {
        osSel.value = j.os_type;
        facts.textContent = t("%(facts)s (guest OS set to %(os)s; change it if wrong)",
                              {facts: facts.textContent, os: j.os_type});
      }
    });
  });

  var BLOCK = 1048576;
  function allZero(buf, at, len) {
    var words = len >> 2, w = new Uint32Array(buf, at, words), i;
    for (i = 0; i < words; i++) if (w[i] !== 0) return false;
    var tail = new Uint8Array(buf, at + 4 * words, len - 4 * words);
    for (i = 0; i < tail.length; i++) if (tail[i] !== 0) return false;
    return true;
  }
  // How many bytes at the start of buf are whole blocks of zeros.
  function zeroBlocks(buf) {
    var at = 0, n = buf.byteLength;
    while (at < n && allZero(buf, at, Math.min(BLOCK, n - at))) at += Math.min(BLOCK, n - at);
    return at;
  }
  // How many bytes at the start of buf come before its first whole block of zeros.
  function dataLength(buf) {
    var at = Math.min(BLOCK, buf.byteLength), n = buf.byteLength;
    while (at < n && !allZero(buf, at, Math.min(BLOCK, n - at))) at += Math.min(BLOCK, n - at);
    return at;
  }
  // The run of zeros that goes on from start (run bytes of it already found).
  function zerosFrom(up, file, start, run) {
    var end = Math.min(start + up.chunk_bytes, file.size);
    if (start >= file.size || run + (end - start) > up.zero_run_bytes) return Promise.resolve(run);
    return file.slice(start, end).arrayBuffer().then(function (buf) {
      var zeros = zeroBlocks(buf);
      return zeros === buf.byteLength ? zerosFrom(up, file, end, run + zeros) : run + zeros;
    });
  }

  function sendFrom(up, file, offset) {
    var started = Date.now(), startOffset = offset, failures = 0;
    show(document.getElementById("upload-progress"), true);
    function next() {
      if (stopped) return Promise.reject(new Error("stopped"));
      setBar(100 * offset / file.size);
      var rate = (offset - startOffset) / Math.max((Date.now() - started) / 1000, 0.001);
      status.textContent = offset > startOffset ?
        t("%(done)s of %(total)s — %(rate)s/s, about %(left)s left",
          {done: human(offset), total: human(file.size), rate: human(rate),
           left: duration((file.size - offset) / rate)}) :
        t("%(done)s of %(total)s", {done: human(offset), total: human(file.size)});
      if (offset >= file.size) return Promise.resolve();
      var end = Math.min(offset + up.chunk_bytes, file.size);
      var chunkUrl = form.dataset.base + "/" + up.id + "/chunk?offset=" + offset;
      return file.slice(offset, end).arrayBuffer().then(function (buf) {
        // Whole MiBs of zeros (a disk image's empty space) are said, not sent: the
        // server counts them in the SHA-256 and keeps them as a hole.
        var zeros = up.zero_run_bytes ? zeroBlocks(buf) : 0;
        if (zeros > 0) {
          return (zeros === buf.byteLength ? zerosFrom(up, file, end, zeros) : Promise.resolve(zeros))
            .then(function (run) { return request("POST", chunkUrl + "&zeros=" + run, null); });
        }
        return request("POST", chunkUrl, new Uint8Array(buf, 0, dataLength(buf)),
                       "application/octet-stream");
      }).then(function (j) {
        if (j._status === 200) { offset = j.offset; failures = 0; return next(); }
        if (j._status === 409 && typeof j.offset === "number") { offset = j.offset; return next(); }
        if (j._status >= 500 || j._status === 0) throw new Error(j.error || t("server error"));
        throw Object.assign(new Error(j.error || t("refused")), { final: true });
      }).catch(function (err) {
        if (err.final || stopped) throw err;
        failures++;
        var wait = Math.min(1000 * Math.pow(2, failures), 30000);
        status.textContent = t("The connection dropped at %(at)s; trying again in %(seconds)s s…",
                               {at: human(offset), seconds: wait / 1000});
        return sleep(wait).then(function () {
          return request("GET", form.dataset.base + "/" + up.id).then(function (j) {
            if (typeof j.offset === "number") offset = j.offset;
          }, function () {});
        }).then(next);
      });
    }
    return next();
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    show(errorBox, false);
    var file = fileInput.files[0];
    if (!file) { fail(t("Choose a file.")); return; }
    var hosts = Array.prototype.map.call(form.querySelectorAll("input[name=hosts]:checked"),
                                         function (c) { return parseInt(c.value, 10); });
    var body = {
      name: nameInput.value, filename: file.name, size: file.size,
      format: form.querySelector("select[name=format]").value,
      sha256: form.querySelector("input[name=sha256]").value,
      os_type: form.querySelector("select[name=os_type]").value,
      firmware: form.querySelector("select[name=firmware]").value,
      cloud_init: form.querySelector("input[name=cloud_init]").checked,
      login_user: form.querySelector("input[name=login_user]").value,
      hosts: hosts
    };
    startBtn.disabled = true; stopped = false;
    request("POST", form.dataset.begin, JSON.stringify(body), "application/json").then(function (up) {
      if (up._status !== 201) throw Object.assign(new Error(up.error || t("refused")), { final: true });
      current = up;
      show(cancelBtn, true);
      return sendFrom(up, file, up.offset);
    }).then(function () {
      status.textContent = t("Checking the file…");
      return request("POST", form.dataset.base + "/" + current.id + "/finish");
    }).then(function (j) {
      if (j._status !== 200) throw Object.assign(new Error(j.error || t("refused")), { final: true });
      setBar(100);
      status.textContent = t("Uploaded and checked (%(format)s, SHA-256 %(sha)s). Copying to the hosts…",
                             {format: j.format, sha: j.sha256});
      window.location.href = j.url;
    }).catch(function (err) {
      startBtn.disabled = false; show(cancelBtn, false);
      if (err.message !== "stopped") fail(err.message);
    });
  });

  cancelBtn.addEventListener("click", function () {
    if (!current || !window.confirm(t("Stop this upload and delete what has arrived?"))) return;
    stopped = true;
    request("POST", form.dataset.base + "/" + current.id + "/abandon").then(function () {
      status.textContent = t("Upload cancelled; nothing kept.");
      startBtn.disabled = false; show(cancelBtn, false); current = null;
    });
  });
})();
