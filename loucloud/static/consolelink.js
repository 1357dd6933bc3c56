// What the two console pages (screen and text) share: the one-time token from the
// URL fragment (removed from the address bar at once), the websocket's address, and
// why a session ended, asked of LouCloud rather than guessed.
export function takeToken() {
  const token = window.location.hash.slice(1);
  history.replaceState(null, "", window.location.pathname + window.location.search);
  return token;
}

export function wsUrl(base, token) {
  if (base.startsWith("/")) {
    base = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + base;
  }
  return base + "?token=" + encodeURIComponent(token);
}

export async function explain(stateUrl) {
  try {
    const r = await fetch(stateUrl, {headers: {Accept: "application/json"},
                                     credentials: "same-origin"});
    if (r.ok) {
      const vm = await r.json();
      if (vm.state === "host offline") return t("The VM's host is unreachable.");
      if (vm.state !== "running" && vm.state !== "paused") {
        return t("The VM is not running (%(state)s).",
                 {state: window.loucloudStateLabel ? window.loucloudStateLabel(vm.state) : vm.state});
      }
    }
  } catch (e) { /* fall through */ }
  return t("The console link expired or was already used.");
}
