"""Console links on the web side (the proxy and real screens: tests/system)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from loucloud.extensions import db
from loucloud.models import ConsoleToken
from loucloud.services import console as console_service
from tests.factories import make_catalog, make_vm

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def vm(app, user, test_host):
    with app.app_context():
        template = make_catalog(("h1", test_host))
        return make_vm(user.id, "mine", template.id)


def tokens(app) -> int:
    with app.app_context():
        return db.session.execute(db.select(db.func.count(ConsoleToken.id))).scalar()


def test_get_on_the_issuing_route_is_405(as_user, vm):
    assert as_user.get(f"/vms/{vm.id}/console").status_code == 405


def test_non_owner_gets_404_and_no_token(app, vm, other_user):
    from tests.conftest import Client
    bob = Client(app)
    bob.login("bob")
    assert bob.post(f"/vms/{vm.id}/console").status_code == 404
    assert bob.get(f"/vms/{vm.id}/screen").status_code == 404
    assert tokens(app) == 0


def test_a_vm_without_a_screen_gets_no_token(app, as_user, vm):
    """The test driver's domains have no VNC server: a clear message, no token."""
    response = as_user.post(f"/vms/{vm.id}/console", follow_redirects=True)
    assert "has no screen to show" in response.get_data(as_text=True)
    assert tokens(app) == 0


def test_the_screen_page_has_no_token_and_escapes_the_name(as_user, vm):
    page = as_user.get(f"/vms/{vm.id}/screen").get_data(as_text=True)
    assert 'type="module"' in page and "console.js" in page
    assert "ws://localhost:6080/websockify" in page  # development: the proxy's own port
    assert "token" not in page.lower().replace("csrf_token", "").replace("csrf-token", "")


def test_the_csp_lets_the_page_reach_the_proxy_only(as_user, vm):
    csp = as_user.get(f"/vms/{vm.id}/screen").headers["Content-Security-Policy"]
    assert "connect-src 'self' ws://localhost:6080;" in csp
    assert "img-src 'self' data: blob:" in csp  # noVNC draws JPEG/PNG rects from data: URLs


def test_malformed_and_unknown_tokens_are_refused_before_anything(app, user, vm):
    with app.app_context():
        with pytest.raises(console_service.ConsoleRefused, match="malformed"):
            console_service.consume("../x", user.id)
        with pytest.raises(console_service.ConsoleRefused, match="unknown"):
            console_service.consume("x" * 43, user.id)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_console_proxy_command_runs_and_refuses_strangers(app, tmp_path):
    """`python manage.py console-proxy`, as `make run` starts it, on its own port."""
    port = _free_port()
    env = dict(os.environ, LOUCLOUD_INSTANCE=str(tmp_path),
               DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
               LOUCLOUD_SITE_URL="http://127.0.0.1:5000")
    proc = subprocess.Popen([sys.executable, "manage.py", "console-proxy", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        with pytest.raises(InvalidStatus) as info:
            with connect(f"ws://127.0.0.1:{port}/websockify?token={'a' * 43}",
                         origin="http://127.0.0.1:5000", open_timeout=5):
                pass
        assert info.value.response.status_code == 403
        # A plain GET: no web server behind the proxy (never --web).
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(100).split(b"\r\n")[0] in (b"HTTP/1.1 405 Method Not Allowed",
                                                     b"HTTP/1.0 405 Method Not Allowed")
    finally:
        proc.terminate()
        out = proc.communicate(timeout=10)[0].decode()
    assert "Console proxy on 127.0.0.1" in out
    assert "a" * 43 not in out  # not even a refused token is written out
