// The VM's serial line in xterm.js, over the console proxy's /serial path, with the
// one-time token from the URL fragment (removed from the address bar at once).
import { Terminal } from "./vendor/xterm/xterm.mjs";
import { explain as explainEnd, takeToken, wsUrl as linkUrl } from "./consolelink.js";
import { FitAddon } from "./vendor/xterm/addon-fit.mjs";

const root = document.getElementById("terminal");
const statusEl = document.getElementById("terminal-status");
const messageEl = document.getElementById("terminal-message");
const retry = document.getElementById("terminal-retry");
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
}

function wsUrl() {
  return linkUrl(root.dataset.ws, token);
}

function explain() {
  return explainEnd(root.dataset.stateUrl);
}

const term = new Terminal({cursorBlink: true, convertEol: false, scrollback: 5000,
                           fontFamily: "DejaVu Sans Mono, monospace", fontSize: 15});
const fit = new FitAddon();
term.loadAddon(fit);
term.open(document.getElementById("terminal-screen"));
fit.fit();
window.addEventListener("resize", () => fit.fit());
window.loucloudTerminal = term;  // for tests and the curious: what the screen shows

if (!/^[A-Za-z0-9_-]{43}$/.test(token)) {
  status("no link", "secondary");
  offerRetry(t("Open the text console from the VM's page, or try again."));
} else {
  const encoder = new TextEncoder();
  const ws = new WebSocket(wsUrl(), ["binary"]);
  ws.binaryType = "arraybuffer";
  let connected = false;
  ws.onopen = () => {
    connected = true;
    status("connected", "success");
    term.focus();
    ws.send(encoder.encode("\r"));  // wake the getty up: show the prompt
  };
  ws.onmessage = (event) => term.write(new Uint8Array(event.data));
  term.onData((data) => { if (ws.readyState === WebSocket.OPEN) ws.send(encoder.encode(data)); });
  ws.onclose = async () => {
    status(connected ? "disconnected" : "refused", connected ? "secondary" : "danger");
    offerRetry(await explain());
  };
}
