"""Shared fixtures: an app on a fresh SQLite file per test, users, logged-in clients,
and hosts on libvirt's real test driver (each host its own in-memory hypervisor)."""
from __future__ import annotations

import re
import shutil
import socket
import tempfile
import threading
from pathlib import Path

import pytest

from loucloud import create_app
from loucloud.extensions import db as _db
from loucloud.services.hypervisors import close_pool
from tests.factories import make_user, write_test_node
from tests.support.browser import browser, live_server, page  # noqa: F401 (fixtures)
# The host lab (system tests, browser tests on real hosts); its hook tears it down late.
from tests.support.lab.fixture import lab, pytest_unconfigure  # noqa: F401
from tests.support.webclient import CSRF_RE, Client  # noqa: F401 (tests import them here)

PASSWORD = "correct horse battery"


def files_in(folder: Path) -> dict:
    """Where a test app keeps uploads and uploaded images: its own folder."""
    return {"UPLOAD_DIR": str(folder / "uploads"), "IMAGE_STORE": str(folder / "images")}


@pytest.fixture
def app(tmp_path):
    url = f"sqlite:///{tmp_path / 'test.sqlite'}"
    app = create_app("test", SQLALCHEMY_DATABASE_URI=url, **files_in(tmp_path))
    with app.app_context():
        _db.create_all()
    yield app
    close_pool(app)
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


@pytest.fixture(scope="session")
def mariadb():
    """A real MariaDB host for the session (skipped, saying why, where none is
    installed; `make test` installs it)."""
    from tests.support import mariadb as support

    reason = support.unavailable_reason()
    if reason:
        pytest.skip(reason)
    # Not under pytest's tmp dir: that one is private to root, and mariadbd runs as mysql.
    workdir = Path(tempfile.mkdtemp(prefix="loucloud-mariadb-"))
    workdir.chmod(0o755)
    host = support.MariaDB(workdir).start()
    yield host
    host.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def mysql_app(mariadb, request):
    """The app on a fresh MariaDB database (schema from the models, as for SQLite)."""
    name = "t_" + re.sub(r"[^a-z0-9]", "_", request.node.name.lower())[-50:]
    url = mariadb.create_database(name)
    app = create_app("test", SQLALCHEMY_DATABASE_URI=url,
                     **files_in(Path(tempfile.mkdtemp(prefix="loucloud-files-"))))
    with app.app_context():
        _db.create_all()
    yield app
    close_pool(app)
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


@pytest.fixture(params=["sqlite", "mariadb"])
def any_app(request):
    """The app on SQLite, then on a real MariaDB host (tests where the database's own
    locking matters: concurrent creates, one-time tokens)."""
    return request.getfixturevalue("app" if request.param == "sqlite" else "mysql_app")


@pytest.fixture
def ctx(app):
    """An app context for tests that call services directly. Don't use the test client
    inside it: requests would share its `g` (and the CSRF token kept there)."""
    with app.app_context():
        yield _db


@pytest.fixture
def client(app):
    return app.test_client()


def _user(app, username, **kw):
    with app.app_context():
        return make_user(username, **kw)


@pytest.fixture
def admin(app):
    return _user(app, "admin", is_admin=True)


@pytest.fixture
def user(app):
    return _user(app, "alice")


@pytest.fixture
def other_user(app):
    return _user(app, "bob")


@pytest.fixture
def as_admin(app, admin):
    c = Client(app)
    assert c.login("admin").status_code == 302
    return c


@pytest.fixture
def as_user(app, user):
    c = Client(app)
    assert c.login("alice").status_code == 302
    return c


@pytest.fixture
def anon(app):
    return Client(app)


IMAGES = {"images": "/var/lib/images"}
IMAGE_FILES = {"images": [("base.qcow2", 1 << 30, "qcow2"), ("base.raw", 2 << 30, "raw")]}
BASE_IMAGE = "/var/lib/images/base.qcow2"


@pytest.fixture
def test_host(tmp_path) -> str:
    """URI of a fresh simulated host (libvirt's test driver with a node file), with an
    image directory holding base.qcow2 (1 GiB) and base.raw (2 GiB)."""
    return write_test_node(Path(tmp_path) / "h1.xml", pools=IMAGES, volumes=IMAGE_FILES)


@pytest.fixture
def test_host2(tmp_path) -> str:
    return write_test_node(Path(tmp_path) / "h2.xml", cpus=8, memory_mib=16384,
                           pools=IMAGES, volumes=IMAGE_FILES)


@pytest.fixture
def silent_socket(tmp_path):
    """A unix socket that accepts connections and never says a word, like a frozen
    libvirtd. Returns a qemu+unix URI for it."""
    path = tmp_path / "silent.sock"
    host = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    host.bind(str(path))
    host.listen(16)
    accepted = []
    stop = threading.Event()

    def accept_loop():
        host.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = host.accept()
                accepted.append(conn)
            except (socket.timeout, OSError):
                continue

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    yield f"qemu+unix:///system?socket={path}"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    host.close()
