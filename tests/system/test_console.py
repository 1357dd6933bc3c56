"""The console through a real websocket and the real proxy, to a VM running in QEMU on
a real libvirtd host: who gets the screen, and who gets not one RFB byte."""
from __future__ import annotations

import logging
import socket
import threading
import time
from datetime import timedelta

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from loucloud.console import rfb as vnc
from loucloud.console.proxy import make_server
from loucloud.extensions import db
from loucloud.models import VM, ConsoleToken, Host, Template, User, utcnow
from loucloud.services import console as console_service
from loucloud.services import images, templates as template_service
from loucloud.services.hypervisors import hypervisor
from loucloud.services.vms import create as vm_create
from loucloud.services.vms import lifecycle as vm_service
from tests.conftest import Client
from tests.factories import make_user
from tests.support import rfb

SITE = "http://127.0.0.1:5000"


@pytest.fixture(scope="module")
def console_image(lab):
    return lab.make_image(lab.host(1), "console-base.qcow2", 64 * 1024 * 1024)


@pytest.fixture
def world(app, lab, console_image):
    """alice's running VM on h1, bob, and the console proxy in a thread."""
    app.config["SITE_URL"] = SITE
    host, path = lab.host(1), console_image
    with app.app_context():
        make_user("admin", is_admin=True)
        alice = make_user("alice")
        make_user("bob")
        from loucloud.services import hosts as host_service
        server = host_service.add_host("h1", host.uri)
        image = images.add_image("base", path, "linux")
        template = template_service.create_template("tiny", template_service.Sizes(1, 128, 1), image)
        vm = vm_create.create_vm(db.session.get(User, alice.id), "screen",
                                  db.session.get(Template, template.id),
                                  db.session.get(Host, server.id))
        vm_id = vm.id
    proxy = make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    clients = {}
    for name in ("alice", "bob", "admin"):
        clients[name] = Client(app)
        clients[name].login(name)
    yield {"vm_id": vm_id, "port": proxy.server_address[1], **clients}
    proxy.shutdown()
    proxy.server_close()
    thread.join()
    with app.app_context():
        for row in db.session.execute(db.select(VM)).scalars().all():
            vm_service.delete_vm(row)


def issue(client, vm_id) -> str:
    response = client.post(f"/vms/{vm_id}/console")
    assert response.status_code == 302, response.get_data(as_text=True)
    location = response.headers["Location"]
    assert f"/vms/{vm_id}/screen#" in location
    return location.split("#", 1)[1]


def cookie(client) -> str:
    return f"loucloud_session={client.http.get_cookie('loucloud_session').value}"


def open_ws(world, token, *, as_client=None, origin=SITE):
    headers = {"Cookie": cookie(as_client)} if as_client is not None else {}
    # close_timeout: closing in the middle of a big screen update, this client may wait
    # for the end of the update before it sees the proxy's close; browsers don't wait.
    return connect(f"ws://127.0.0.1:{world['port']}/websockify?token={token}",
                   origin=origin, additional_headers=headers, open_timeout=10,
                   close_timeout=1)


def refused(world, token, **kw) -> int:
    """The HTTP status of a refused handshake (no websocket, so no RFB byte)."""
    with pytest.raises(InvalidStatus) as info:
        open_ws(world, token, **kw).close()
    assert b"RFB" not in (info.value.response.body or b"")
    return info.value.response.status_code


def test_a_valid_token_gets_the_screen(app, world):
    token = issue(world["alice"], world["vm_id"])
    with open_ws(world, token, as_client=world["alice"]) as ws:
        seen = rfb.handshake(ws)
    assert seen["greeting"].startswith(b"RFB 003.")
    assert seen["width"] > 0 and seen["height"] > 0 and seen["rectangles"] >= 1


def test_the_administrator_may_open_any_console(app, world):
    token = issue(world["admin"], world["vm_id"])
    with open_ws(world, token, as_client=world["admin"]) as ws:
        assert rfb.handshake(ws)["rectangles"] >= 1


def test_a_token_works_once(app, world):
    token = issue(world["alice"], world["vm_id"])
    with open_ws(world, token, as_client=world["alice"]) as ws:
        rfb.handshake(ws)
    assert refused(world, token, as_client=world["alice"]) == 403


def test_an_expired_token_is_refused(app, world):
    token = issue(world["alice"], world["vm_id"])
    with app.app_context():
        for row in db.session.execute(db.select(ConsoleToken)).scalars():
            row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert refused(world, token, as_client=world["alice"]) == 403


def test_another_users_session_cannot_use_a_token_and_does_not_spend_it(app, world):
    token = issue(world["alice"], world["vm_id"])
    assert refused(world, token, as_client=world["bob"]) == 403
    assert refused(world, token) == 403  # no session at all
    with open_ws(world, token, as_client=world["alice"]) as ws:
        assert rfb.handshake(ws)["rectangles"] >= 1


@pytest.mark.parametrize("bad", ["../x", "A" * 44, "A" * 500, "!" * 43, "%00" * 14 + "a",
                                 ""])
def test_malformed_tokens_are_refused(app, world, bad):
    assert refused(world, bad, as_client=world["alice"]) == 403


@pytest.mark.parametrize("origin", ["http://evil.example", "http://127.0.0.1:5001",
                                    "https://127.0.0.1:5000", "null"])
def test_a_wrong_origin_is_refused_and_does_not_spend_the_token(app, world, origin):
    token = issue(world["alice"], world["vm_id"])
    assert refused(world, token, as_client=world["alice"], origin=origin) == 403
    with open_ws(world, token, as_client=world["alice"]) as ws:
        assert rfb.handshake(ws)["rectangles"] >= 1


def test_other_users_get_no_token_at_all(app, world):
    response = world["bob"].post(f"/vms/{world['vm_id']}/console")
    assert response.status_code == 404
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(ConsoleToken.id))).scalar() == 0


def test_tokens_end_with_a_stopped_vm_and_with_logout(app, world):
    token = issue(world["alice"], world["vm_id"])
    world["alice"].post(f"/vms/{world['vm_id']}/poweroff")
    assert refused(world, token, as_client=world["alice"]) == 403
    world["alice"].post(f"/vms/{world['vm_id']}/start")
    token = issue(world["alice"], world["vm_id"])
    session = cookie(world["alice"])
    world["alice"].post("/logout")
    with pytest.raises(InvalidStatus):
        connect(f"ws://127.0.0.1:{world['port']}/websockify?token={token}", origin=SITE,
                additional_headers={"Cookie": session}, open_timeout=10).close()


def test_disabling_the_owner_ends_the_tokens(app, world):
    token = issue(world["alice"], world["vm_id"])
    alice_session = cookie(world["alice"])
    with app.app_context():
        alice_id = db.session.execute(db.select(User.id).filter_by(username="alice")).scalar()
    world["admin"].post(f"/users/{alice_id}/disable")
    with pytest.raises(InvalidStatus):
        connect(f"ws://127.0.0.1:{world['port']}/websockify?token={token}", origin=SITE,
                additional_headers={"Cookie": alice_session}, open_timeout=10).close()


def test_no_token_in_any_log(app, world, caplog):
    caplog.set_level(logging.DEBUG)
    tokens = [issue(world["alice"], world["vm_id"]) for _ in range(2)]
    with open_ws(world, tokens[0], as_client=world["alice"]) as ws:
        rfb.handshake(ws)
    refused(world, tokens[0], as_client=world["alice"])
    refused(world, tokens[1], as_client=world["bob"])
    refused(world, tokens[1], as_client=world["alice"], origin="http://evil.example")
    assert "console of" in caplog.text and "console refused" in caplog.text
    for token in tokens:
        assert token not in caplog.text


def test_a_vm_that_is_not_running_gets_no_token(app, world):
    world["alice"].post(f"/vms/{world['vm_id']}/poweroff")
    response = world["alice"].post(f"/vms/{world['vm_id']}/console", follow_redirects=True)
    assert "has no screen to show: The VM is not running" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(ConsoleToken.id))).scalar() == 0


# -- around LouCloud: straight to the host's VNC port -----------------------------------
def _vnc_address(app, vm_id) -> tuple[str, int]:
    with app.app_context():
        vm = db.session.get(VM, vm_id)
        return hypervisor(vm.host).vnc_address(vm.uuid)


def _security_types(address) -> bytes:
    """What the VM's VNC server offers a client that comes straight to it."""
    with socket.create_connection(address, timeout=10) as sock:
        assert sock.recv(12).startswith(b"RFB 003.")
        sock.sendall(b"RFB 003.008\n")
        count = sock.recv(1)[0]
        return sock.recv(count)


def _gets_in(address, password: str) -> bool:
    """Whether the VM's VNC server lets a client in with ``password`` (VNC auth)."""
    with socket.create_connection(address, timeout=10) as sock:
        try:
            vnc.authenticate(sock, password)
            return True
        except vnc.HandshakeFailed as exc:
            assert "refused the password" in str(exc), exc
            return False


def _opening(app, world) -> console_service.Screen:
    """What the proxy gets when it takes a token: the address and a fresh password."""
    token = issue(world["alice"], world["vm_id"])
    with app.app_context():
        alice = db.session.execute(db.select(User).where(User.username == "alice")).scalar()
        return console_service.consume(token, alice.id)


def test_nobody_reaches_the_screen_around_loucloud(app, world, monkeypatch):
    """Straight to the host's VNC port, without LouCloud: the server asks for a
    password (it offers no 'None'), a guess is refused, the password of an earlier
    opening is refused, and the latest one works only for a few seconds."""
    address = _vnc_address(app, world["vm_id"])
    offered = _security_types(address)
    assert 1 not in offered and 2 in offered, list(offered)
    assert not _gets_in(address, "guess123")
    first, second = _opening(app, world), _opening(app, world)
    assert (first.host, first.port) == (second.host, second.port) == address
    assert first.password and second.password and first.password != second.password
    assert not _gets_in(address, first.password)  # replaced by the second opening
    assert _gets_in(address, second.password)
    monkeypatch.setattr(console_service, "SCREEN_PASSWORD_SECONDS", 2)
    third = _opening(app, world)
    time.sleep(3)
    assert not _gets_in(address, third.password)  # expired: the proxy had its moment
    # Through LouCloud the screen still opens, and the browser is asked for nothing.
    token = issue(world["alice"], world["vm_id"])
    with open_ws(world, token, as_client=world["alice"]) as ws:
        assert rfb.handshake(ws)["rectangles"] >= 1
