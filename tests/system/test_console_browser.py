"""A user opens the console of a VM running in QEMU, in a real Chromium: the screen
shows SeaBIOS within seconds of the click. The screenshot is kept in test-artifacts/."""
from __future__ import annotations

import threading
import time

import pytest

from loucloud.console.proxy import make_server
from loucloud.extensions import db
from loucloud.models import VM, Host, Template, User
from loucloud.services import images, hosts as host_service, templates as template_service
from loucloud.services.vms import create as vm_create
from loucloud.services.vms import lifecycle as vm_service
from tests.conftest import PASSWORD
from tests.factories import make_user
from tests.support.browser import ARTIFACTS, login

pytestmark = pytest.mark.browser

# Non-black pixels of noVNC's canvas (its backbuffer is drawn there).
LIT_PIXELS = """() => {
  const c = document.querySelector('#console-screen canvas');
  if (!c || !c.width) return 0;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let lit = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 120) lit++;
  return lit;
}"""


@pytest.fixture(scope="module")
def browser_image(lab):
    return lab.make_image(lab.host(2), "browser-base.qcow2", 64 * 1024 * 1024)


def test_console_shows_the_vm_screen(app, lab, browser_image, live_server, page, capsys):
    proxy = make_server(app, "127.0.0.1", 0)
    app.config["CONSOLE_PROXY_PORT"] = proxy.server_address[1]
    proxy.gate.origins = frozenset({live_server.url})
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    host = lab.host(2)
    try:
        with app.app_context():
            make_user("admin", is_admin=True)
            alice = make_user("alice")
            server = host_service.add_host("h2", host.uri)
            image = images.add_image("base", browser_image, "linux")
            template = template_service.create_template("tiny", template_service.Sizes(1, 128, 1), image)
            vm = vm_create.create_vm(db.session.get(User, alice.id), "desk-1",
                                      db.session.get(Template, template.id),
                                      db.session.get(Host, server.id))
            vm_id, vm_name = vm.id, vm.name
        login(page, live_server.url, "alice", PASSWORD)
        page.goto(f"{live_server.url}/vms/{vm_id}")
        start = time.monotonic()
        with page.expect_navigation():
            page.click("button:has-text('Console')")
        page.wait_for_selector("#console[data-status='connected']", timeout=15000)
        connected = time.monotonic() - start
        page.wait_for_function(f"({LIT_PIXELS})() > 200", timeout=20000)
        first_frame = time.monotonic() - start
        assert "#" not in page.url  # the token left the address bar at once
        assert page.inner_text("#console-status") == "connected"
        lit = page.evaluate(LIT_PIXELS)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "console-seabios.png"))
        assert lit > 200  # text on the screen, not a blank canvas
        assert page.js_errors == []
        assert vm_name in page.inner_text("a.btn-outline-secondary")

        # The used link can't be replayed: reloading leaves the page without a token.
        page.reload()
        page.wait_for_selector("#console-retry:not(.d-none)")
        with capsys.disabled():
            print(f"\n  console: click to connected {connected:.2f} s, click to first "
                  f"frame with text {first_frame:.2f} s ({lit} lit pixels)")
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join()
        with app.app_context():
            for row in db.session.execute(db.select(VM)).scalars().all():
                vm_service.delete_vm(row)
