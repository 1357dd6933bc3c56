// The VM's screen: noVNC over the console proxy, with the one-time token from the URL
// fragment (which is removed from the address bar at once).
import RFB from "./vendor/novnc/core/rfb.js";

const root = document.getElementById("console");
const screen = document.getElementById("console-screen");
const statusEl = document.getElementById("console-status");
const messageEl = document.getElementById("console-message");
const cad = document.getElementById("console-cad");
const retry = document.getElementById("console-retry");
const token = window.location.hash.slice(1);
history.replaceState(null, "", window.location.pathname + window.location.search);

function status(text, color) {
  statusEl.textContent = text;
  statusEl.className = "badge text-bg-" + color;
  root.dataset.status = text;
}

function offerRetry(message) {
  messageEl.textContent = message;
  retry.classList.remove("d-none");
  cad.disabled = true;
}

function wsUrl() {
  let base = root.dataset.ws;
  if (base.startsWith("/")) {
    base = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + base;
  }
  return base + "?token=" + encodeURIComponent(token);
}

// Why did it end? Ask LouCloud about the VM rather than guess.
async function explain() {
  try {
    const r = await fetch(root.dataset.stateUrl, {headers: {Accept: "application/json"},
                                                   credentials: "same-origin"});
    if (r.ok) {
      const vm = await r.json();
      if (vm.state === "host offline") return "The VM's host is unreachable.";
      if (vm.state !== "running" && vm.state !== "paused") return "The VM is not running (" + vm.state + ").";
    }
  } catch (e) { /* fall through */ }
  return "The console link expired or was already used.";
}

if (!/^[A-Za-z0-9_-]{43}$/.test(token)) {
  status("no link", "secondary");
  offerRetry("Open the console from the VM's page, or try again.");
} else {
  let connected = false;
  const rfb = new RFB(screen, wsUrl(), {shared: true});
  rfb.scaleViewport = true;
  rfb.resizeSession = false;
  rfb.addEventListener("connect", () => {
    connected = true;
    status("connected", "success");
    messageEl.textContent = "";
    cad.disabled = false;
    const canvas = screen.querySelector("canvas");
    if (canvas) canvas.setAttribute("aria-label", "Screen of " + root.dataset.vmName);
  });
  rfb.addEventListener("disconnect", async (ev) => {
    status("disconnected", "danger");
    if (connected && ev.detail.clean) {
      offerRetry("The console was closed.");
    } else if (connected) {
      offerRetry(await explain() === "The console link expired or was already used."
        ? "The connection to the VM was lost." : await explain());
    } else {
      offerRetry(await explain());
    }
  });
  rfb.addEventListener("securityfailure", (ev) => {
    offerRetry("The VM's screen refused the connection: " + (ev.detail.reason || "security failure") + ".");
  });
  cad.addEventListener("click", () => { rfb.sendCtrlAltDel(); rfb.focus(); });
  window.loucloudConsole = rfb;
}

document.getElementById("console-full").addEventListener("click", () => {
  if (document.fullscreenElement) document.exitFullscreen();
  else root.requestFullscreen().catch(() => {});
});
