// The VM's screen: noVNC over the console proxy, with the one-time token from the URL
// fragment (which is removed from the address bar at once).
import RFB from "./vendor/novnc/core/rfb.js";
import { explain as explainEnd, takeToken, wsUrl as linkUrl } from "./consolelink.js";

const root = document.getElementById("console");
const screen = document.getElementById("console-screen");
const statusEl = document.getElementById("console-status");
const messageEl = document.getElementById("console-message");
const cad = document.getElementById("console-cad");
const retry = document.getElementById("console-retry");
const token = takeToken();

// The badge says the status in the reader's language; data-status keeps it as it is.
function status(key, color) {
  const said = {"no link": t("no link"), "connected": t("connected"),
                "disconnected": t("disconnected"), "refused": t("refused")};
  statusEl.textContent = said[key] || key;
  statusEl.className = "badge text-bg-" + color;
  root.dataset.status = key;
}

function offerRetry(message) {
  messageEl.textContent = message;
  retry.classList.remove("d-none");
  cad.disabled = true;
}

function wsUrl() {
  return linkUrl(root.dataset.ws, token);
}

function explain() {
  return explainEnd(root.dataset.stateUrl);
}

if (!/^[A-Za-z0-9_-]{43}$/.test(token)) {
  status("no link", "secondary");
  offerRetry(t("Open the console from the VM's page, or try again."));
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
    if (canvas) canvas.setAttribute("aria-label", t("Screen of %(name)s", {name: root.dataset.vmName}));
  });
  rfb.addEventListener("disconnect", async (ev) => {
    status("disconnected", "danger");
    if (connected && ev.detail.clean) {
      offerRetry(t("The console was closed."));
    } else if (connected) {
      const why = await explain();
      offerRetry(why === t("The console link expired or was already used.")
        ? t("The connection to the VM was lost.") : why);
    } else {
      offerRetry(await explain());
    }
  });
  rfb.addEventListener("securityfailure", (ev) => {
    offerRetry(t("The VM's screen refused the connection: %(reason)s.",
                 {reason: ev.detail.reason || t("security failure")}));
  });
  cad.addEventListener("click", () => { rfb.sendCtrlAltDel(); rfb.focus(); });
  window.loucloudConsole = rfb;
}

document.getElementById("console-full").addEventListener("click", () => {
  if (document.fullscreenElement) document.exitFullscreen();
  else root.requestFullscreen().catch(() => {});
});
