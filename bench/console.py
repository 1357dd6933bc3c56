"""3. The console: click to first framebuffer update through the proxy, and the bytes per
second of a framebuffer stream through the proxy against a direct TCP VNC connection.

The proxy runs as it is deployed: ``manage.py console-proxy`` in its own process, on the
same database and secret key as the app. A websocket client (the 'browser') does what
noVNC does after the click: POST the console button, load the screen page, open the
websocket with its session cookie and the site's Origin, run the RFB handshake and read
the first whole framebuffer update. With Debian's Chromium and Playwright present, a
real browser measures the click to the first screen with text on it as well."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import libvirt

from tests.support.webclient import CSRF_RE

from . import rfbclient
from .common import (SECRET_KEY, Section, add_catalog, add_user, close_app, login,
                     make_app, median, ms)
from .lab import boot_image

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
STREAM_SECONDS = 4.0
SCREEN_HAS_TEXT = """() => {
  const c = document.querySelector('#console-screen canvas');
  if (!c || !c.width) return 0;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let lit = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 120) lit++;
  return lit > 200;
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the console proxy exited ({proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the console proxy does not listen")


class ConsoleWorld:
    def __init__(self, ctx):
        from loucloud.extensions import db
        from loucloud.models import Host, Template, User
        from config import INSTANCE_DIR
        from loucloud.services.vms import create as vm_create

        self.ctx = ctx
        self.host = ctx.lab.hosts[1]
        self.web_port, self.proxy_port = free_port(), free_port()
        self.site = f"http://127.0.0.1:{self.web_port}"
        workdir = ctx.workdir / "console"
        self.app = make_app(workdir, SITE_URL=self.site, CONSOLE_PROXY_PORT=self.proxy_port)
        ctx.cleanup(close_app, self.app)
        image = boot_image(ctx.lab.lab, self.host, "bench-console.raw", 64 << 20)
        with self.app.app_context():
            alice = add_user("alice")
            cat = add_catalog([self.host], image, memory_mib=64)
            vm = vm_create.create_vm(db.session.get(User, alice), "screen",
                                      db.session.get(Template, cat["template"]),
                                      db.session.get(Host, cat["servers"][self.host.index]))
            self.vm_id, self.uuid = vm.id, vm.uuid
            db.session.remove()
        ctx.lab.settle()
        conn = libvirt.open(self.host.uri)
        try:
            from loucloud.virt.xml import parse_domain
            desc = parse_domain(conn.lookupByUUIDString(self.uuid).XMLDesc(0))
            self.vnc = (desc.vnc_listen, desc.vnc_port)
        finally:
            conn.close()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LOUCLOUD_", "DATABASE"))}
        env.update({"DATABASE_URL": self.app.config["SQLALCHEMY_DATABASE_URI"],
                    "LOUCLOUD_SECRET_KEY": SECRET_KEY, "LOUCLOUD_SITE_URL": self.site,
                    "CACHE_DIR": str(workdir / "cache"),
                    "LOUCLOUD_INSTANCE": str(INSTANCE_DIR)})
        log = open(workdir / "console-proxy.log", "wb")
        self.proxy = subprocess.Popen(
            [sys.executable, "manage.py", "console-proxy", "--host", "127.0.0.1",
             "--port", str(self.proxy_port)], cwd=ROOT, env=env, stdout=log,
            stderr=subprocess.STDOUT)
        log.close()
        ctx.cleanup(self._stop_proxy)
        wait_port(self.proxy_port, self.proxy)
        self.alice = login(self.app, "alice")

    def _stop_proxy(self) -> None:
        if self.proxy.poll() is None:
            self.proxy.terminate()
            try:
                self.proxy.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proxy.kill()
                self.proxy.wait()

    def open_proxied(self) -> rfbclient.RFB:
        """The click: console POST, the screen page, the websocket, the handshake."""
        page = self.alice.get(f"/vms/{self.vm_id}").get_data(as_text=True)
        token = CSRF_RE.search(page).group(1)
        return self._click(token)

    def _click(self, csrf: str) -> rfbclient.RFB:
        from websockets.sync.client import connect

        response = self.alice.post(f"/vms/{self.vm_id}/console", {"csrf_token": csrf})
        location = response.headers.get("Location", "")
        if response.status_code != 302 or "#" not in location:
            raise RuntimeError(f"no console link: {response.status_code}")
        path, token = location.split("#", 1)
        self.alice.get(path.replace("http://localhost", ""))
        ws = connect(f"ws://127.0.0.1:{self.proxy_port}/websockify?token={token}",
                     origin=self.site, additional_headers={"Cookie": self.alice.cookie()},
                     open_timeout=10, close_timeout=1, max_size=None, compression=None)
        rfb = rfbclient.RFB(rfbclient.WSStream(ws))
        rfb.handshake()
        return rfb

    def click_to_first_update(self) -> float:
        page = self.alice.get(f"/vms/{self.vm_id}").get_data(as_text=True)
        csrf = CSRF_RE.search(page).group(1)
        start = time.perf_counter()
        rfb = self._click(csrf)
        rfb.request(incremental=False)
        rfb.read_update()
        seconds = time.perf_counter() - start
        rfb.s.close()
        return seconds

    def direct_password(self) -> str:
        """A password for a direct connection, set on the VM's VNC server as LouCloud
        sets one at each console opening (outside the time: the floor is the screen)."""
        conn = libvirt.open(self.host.uri)
        try:
            from loucloud.virt.domains import open_screen
            open_screen(conn, self.uuid, "benchpw1", 120)
        finally:
            conn.close()
        return "benchpw1"

    def direct_first_update(self) -> float:
        password = self.direct_password()
        start = time.perf_counter()
        rfb = rfbclient.tcp(*self.vnc)
        rfb.handshake(password)
        rfb.request(incremental=False)
        rfb.read_update()
        seconds = time.perf_counter() - start
        rfb.s.close()
        return seconds

    def stream(self, proxied: bool) -> tuple[float, tuple[int, int], float]:
        """Bytes per second of full updates for STREAM_SECONDS, the screen size, and the
        proxy's CPU seconds per second of stream (0 when direct)."""
        if proxied:
            rfb = self.open_proxied()
        else:
            password = self.direct_password()
            rfb = rfbclient.tcp(*self.vnc)
            rfb.handshake(password)
        try:
            rfb.request(incremental=False)
            rfb.read_update()
            cpu = self.proxy_cpu()
            received, seconds, _updates = rfb.stream(STREAM_SECONDS)
            cpu = self.proxy_cpu() - cpu
        finally:
            rfb.s.close()
        return received / seconds, (rfb.width, rfb.height), (cpu / seconds if proxied else 0.0)

    def proxy_cpu(self) -> float:
        """CPU seconds the proxy process has used (user + system, all threads)."""
        fields = Path(f"/proc/{self.proxy.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    # -- a real browser ------------------------------------------------------------------
    def browser_runs(self, runs: int) -> list[float] | str:
        if not os.path.exists(CHROMIUM):
            return f"no {CHROMIUM}"
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as exc:
            return f"no Playwright ({exc})"
        from werkzeug.serving import make_server

        from .common import PASSWORD

        server = make_server("127.0.0.1", self.web_port, self.app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        times: list[float] = []
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                    "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking"])
                try:
                    page = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
                    page.goto(f"{self.site}/login")
                    page.fill("#username", "alice")
                    page.fill("#password", PASSWORD)
                    with page.expect_navigation():
                        page.click("input[type=submit]")
                    for r in range(runs + 1):  # the first one warms the browser's cache
                        page.goto(f"{self.site}/vms/{self.vm_id}")
                        start = time.perf_counter()
                        with page.expect_navigation():
                            page.click("button:has-text('Console')")
                        page.wait_for_function(SCREEN_HAS_TEXT, timeout=20000)
                        if r:
                            times.append(time.perf_counter() - start)
                finally:
                    browser.close()
        finally:
            server.shutdown()
            server.server_close()
            thread.join()
        return times


def run(ctx) -> list[Section]:
    world = ConsoleWorld(ctx)
    runs = ctx.runs(7)
    world.click_to_first_update()
    world.direct_first_update()
    clicks, directs = [], []
    for _ in range(runs):
        clicks.append(world.click_to_first_update())
        directs.append(world.direct_first_update())
    ctx.progress(f"console: click to first update {ms(median(clicks))}, "
                 f"direct {ms(median(directs))}")
    stream_runs = ctx.runs(3)
    rates: dict[bool, list[float]] = {True: [], False: []}
    cpu_share: list[float] = []
    size = (0, 0)
    for r in range(stream_runs):
        for proxied in ((True, False) if r % 2 else (False, True)):
            rate, size, cpu = world.stream(proxied)
            rates[proxied].append(rate)
            if proxied:
                cpu_share.append(cpu)
    proxy_rate, direct_rate = median(rates[True]), median(rates[False])
    proxy_cpu = median(cpu_share)
    ctx.progress(f"console: stream {proxy_rate / 1e6:.1f} MB/s through the proxy, "
                 f"{direct_rate / 1e6:.1f} MB/s direct, proxy CPU {proxy_cpu:.0%}")
    chromium = world.browser_runs(ctx.runs(3))
    table = Section("3. Console (VM on a lab host, screen "
                    f"{size[0]}×{size[1]}, 32 bits per pixel, raw encoding)",
                    ["measure", "through the proxy", "direct TCP VNC", "proxy / direct"])
    table.add("click → first whole framebuffer update (websocket client)",
              ms(median(clicks)), ms(median(directs)) + " (connect → first update)",
              f"{median(clicks) / median(directs):.2f}")
    table.add(f"framebuffer stream, full updates for {STREAM_SECONDS:g} s",
              f"{proxy_rate / 1e6:.1f} MB/s", f"{direct_rate / 1e6:.1f} MB/s",
              f"{proxy_rate / direct_rate:.2f}")
    if proxy_cpu > 0:
        table.add("proxy CPU while streaming (one core = 100 %)", f"{proxy_cpu:.0%}",
                  "—", f"≈ {proxy_rate / proxy_cpu / 1e6:.0f} MB/s per core")
    if isinstance(chromium, list) and chromium:
        table.add("click → screen with text in Chromium (noVNC)", ms(median(chromium)), "—", "—")
    else:
        table.notes.append(f"Chromium measurement skipped: {chromium}.")
    table.notes.append(
        f"Click: median of {runs} (POST /vms/<id>/console, GET of the screen page, websocket "
        "through the proxy with the session cookie and Origin, RFB handshake, a full update "
        "read to its last byte); direct: TCP connect, handshake, the same update.")
    table.notes.append(
        f"Stream: median of {stream_runs} runs of each, alternating; non-incremental "
        "full-screen requests, the next one sent as soon as an update's header arrives. "
        "QEMU paces updates by its refresh timer, so the direct figure is what the VM "
        "gives, not what the link can carry; the proxy's CPU share says how much more it "
        "could carry. The proxy is `manage.py console-proxy` in its own process.")
    if isinstance(chromium, list) and chromium:
        table.notes.append(
            f"Chromium: median of {len(chromium)} after one warm-up: click on Console to "
            "more than 200 lit pixels on noVNC's canvas (SeaBIOS's text).")
    r = proxy_rate / direct_rate
    table.target("framebuffer stream through the proxy ≥ 0.8 × direct", f"{r:.2f}", r >= 0.8)
    return [table]
