"""The real guest (manage.py images build's Debian image) on the lab's real libvirtd
and QEMU: a VM made by LouCloud boots with its name as hostname, takes its owner's SSH
key and password, has the address LouCloud shows, a fixed one on LouCloud's NAT
network, a serial console through the proxy, a password reset through the agent, and
shuts down and reboots through ACPI.

One VM is booted for the module (a boot costs tens of seconds under TCG) and its tests
run in order; the last ones shut it down."""
from __future__ import annotations

import threading
import time

import pytest
from websockets.sync.client import connect

from loucloud.console.proxy import make_server
from loucloud.extensions import db
from loucloud.models import VM, Host, Template, User
from loucloud.services import images as image_service
from loucloud.services.vms import create as vm_create
from loucloud.services.vms import guest as guest_service
from loucloud.services.hypervisors import pool
from loucloud.services.vms import lifecycle, state
from tests.conftest import Client
from tests.support.guest import SITE, Guest, boot_bound, publish_guest, wait_for

PASSWORD = "first login 4711"
NEW_PASSWORD = "second login 4712"
SUBNET = "10.77.0.0/24"


@pytest.fixture(scope="module")
def world(lab, guest_image, module_app, ssh_key):
    """The built image on h1 through libvirt's upload, a LouCloud NAT network "lab" on
    h1, alice with her SSH key, and her VM "web-1" booting."""
    app = module_app
    with app.app_context():
        made = publish_guest(lab, guest_image, ssh_key, "lab", SUBNET, "small")
        vm = vm_create.create_vm(db.session.get(User, made["alice"]), "web-1",
                                 db.session.get(Template, made["template"]),
                                 db.session.get(Host, made["host"]), password=PASSWORD)
        ids = {"vm": vm.id, "template": made["template"], "host": made["host"],
               "alice": made["alice"], "ip": vm.ip_address}
    created = time.monotonic()
    guest = Guest(lab.host(1), ids["ip"], ssh_key)
    guest.wait_for_ssh(boot_bound())
    print(f"\n  boot to SSH ({lab.accel()}): {time.monotonic() - created:.0f} s")
    yield {"app": app, "guest": guest, **ids}
    with app.app_context():
        for row in db.session.execute(db.select(VM)).scalars().all():
            lifecycle.delete_vm(row)
        # The lab is shared by the session: h1 goes back to how it was (the image's
        # volume out of LouCloud's pool, the network "lab" gone).
        pool().call(lab.host(1).uri, _forget_lab_network_and_image, timeout=30)


def _forget_lab_network_and_image(conn) -> None:
    net = conn.networkLookupByName("lab")
    net.destroy()
    net.undefine()
    conn.storagePoolLookupByName("loucloud").storageVolLookupByName(
        image_service.volume_name_for("debian")).delete(0)


def test_hostname_is_the_vm_name_and_the_key_lets_the_owner_in(world):
    assert world["guest"].ssh("hostname").strip() == "web-1"


def test_the_address_loucloud_shows_is_the_guests_own_fixed_one(world):
    own = world["guest"].ssh("ip -4 -o addr show scope global").split()
    assert any(word.startswith(world["ip"] + "/") for word in own), own
    assert world["ip"].startswith("10.77.0.")
    with world["app"].app_context():
        view = state.view_of(db.session.get(VM, world["vm"]))
    assert view.addresses[0] == world["ip"]


def test_the_guest_gets_a_cpu_modern_software_needs_and_its_whole_disk(world):
    flags = world["guest"].ssh("grep -m1 '^flags' /proc/cpuinfo").split()
    assert {"sse4_2", "popcnt", "ssse3", "cx16"} <= set(flags)   # x86-64-v2
    size_kib = int(world["guest"].ssh("df -k --output=size / | tail -1"))
    assert size_kib > 2.5 * 1024 * 1024    # the root grew to the template's 3 GiB


def test_the_owner_logs_in_with_the_password_over_the_serial_console(world, proxy):
    with proxy.serial(world["vm"]) as line:
        line.login("debian", PASSWORD)
        assert "web-1" in line.run("hostname")


def test_reset_password_through_the_agent_then_log_in_with_it(world, proxy):
    with world["app"].app_context():
        vm = db.session.get(VM, world["vm"])
        wait_for(lambda: _agent_answers(vm), 120, "the guest agent to answer")
        message = guest_service.reset_password(vm, "", NEW_PASSWORD)
    assert "debian" in message and NEW_PASSWORD not in message
    with proxy.serial(world["vm"]) as line:
        line.login("debian", NEW_PASSWORD)
        assert "web-1" in line.run("hostname")


def _agent_answers(vm) -> bool:
    from loucloud.services.hypervisors import hypervisor
    from loucloud.virt import VirtError
    try:
        hypervisor(vm.host).agent_addresses(vm.uuid)
        return True
    except VirtError:
        return False


def test_a_second_vm_gets_another_address_and_gives_it_back(world):
    app = world["app"]
    with app.app_context():
        alice = db.session.get(User, world["alice"])
        template, host = db.session.get(Template, world["template"]), \
            db.session.get(Host, world["host"])
        second = vm_create.create_vm(alice, "web-2", template, host, start=False)
        second_ip = second.ip_address
        assert second_ip and second_ip != world["ip"]
        lifecycle.delete_vm(db.session.get(VM, second.id))
        third = vm_create.create_vm(alice, "web-3", template, host, start=False)
        assert third.ip_address == second_ip
        lifecycle.delete_vm(db.session.get(VM, third.id))


@pytest.fixture
def proxy(world):
    """The console proxy in a thread, and alice's session to ask for serial tokens."""
    app = world["app"]
    server = make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    alice = Client(app)
    alice.login("alice")

    class Proxy:
        def serial(self, vm_id):
            response = alice.post(f"/vms/{vm_id}/serial")
            assert response.status_code == 302, response.get_data(as_text=True)
            token = response.headers["Location"].split("#", 1)[1]
            cookie = f"loucloud_session={alice.http.get_cookie('loucloud_session').value}"
            ws = connect(f"ws://127.0.0.1:{server.server_address[1]}/websockify/serial"
                         f"?token={token}", origin=SITE, additional_headers={"Cookie": cookie},
                         subprotocols=["binary"], open_timeout=10, close_timeout=1)
            from tests.support.guest import SerialLine
            return SerialLine(ws)

    yield Proxy()
    server.shutdown()
    server.server_close()
    thread.join()


# -- in Chromium, through the VM's page (these come last: the last one shuts it down) --
@pytest.fixture(scope="module")
def site(world):
    """The app served to Chromium, with its console proxy, and alice logged in."""
    from tests.support.browser import LiveServer

    app = world["app"]
    with LiveServer(app) as live:
        server = make_server(app, "127.0.0.1", 0)
        server.gate.origins = frozenset({live.url})
        app.config["CONSOLE_PROXY_PORT"] = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield live.url
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def alice_page(site, page):
    from tests.conftest import PASSWORD as ACCOUNT_PASSWORD
    from tests.support.browser import login

    login(page, site, "alice", ACCOUNT_PASSWORD)
    return page


def test_text_console_in_chromium_shows_the_prompt_and_echoes_keys(world, site, alice_page):
    page = alice_page
    page.goto(f"{site}/vms/{world['vm']}")
    with page.expect_navigation():
        page.click("button:has-text('Text console')")
    page.wait_for_function(
        "() => document.getElementById('terminal').dataset.status === 'connected'",
        timeout=20_000)
    screen = "() => { const b = window.loucloudTerminal.buffer.active; let t = '';" \
             " for (let i = 0; i < b.length; i++) t += b.getLine(i).translateToString(true)" \
             " + '\\n'; return t; }"
    shows = "(word) => (" + screen + ")().split('login:').pop().includes(word)"
    try:
        page.wait_for_function("() => (" + screen + ")().includes('login:')",
                               timeout=60_000)
    except Exception:
        raise AssertionError(f"no login prompt; errors {page.js_errors}; screen "
                             f"{page.evaluate(screen)!r}") from None
    page.keyboard.type("debian")
    page.wait_for_function(shows, arg="debian", timeout=20_000)
    assert page.js_errors == [], page.js_errors


def test_reboot_from_the_page_comes_back_with_a_new_boot(world, site, alice_page):
    guest, page = world["guest"], alice_page
    before = guest.boot_id()
    page.goto(f"{site}/vms/{world['vm']}")
    with page.expect_navigation():
        page.click("[data-action=reboot] button")
    assert "Reboot requested" in page.inner_text(".alert-success")
    wait_for(lambda: guest.answers() and guest.boot_id() != before, boot_bound(),
             "the guest to come back with a new boot id")


def test_shut_down_from_the_page_ends_shut_off(world, site, alice_page):
    page = alice_page
    page.goto(f"{site}/vms/{world['vm']}")
    started = time.monotonic()
    with page.expect_navigation():
        page.click("[data-action=shutdown] button")
    page.wait_for_selector("#vm-header[data-state='shut off'], .vm-state[data-state='shut off']",
                           timeout=boot_bound() * 1000)
    print(f"\n  ACPI shutdown to shut off: {time.monotonic() - started:.0f} s")
    with world["app"].app_context():
        assert state.view_of(db.session.get(VM, world["vm"])).state == "shut off"
