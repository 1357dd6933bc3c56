"""Console tokens, end to end on the web side: the page issues a one-time link, and the
console proxy's own gate (loucloud/console/proxy.py Gate, what the websocket handshake
calls) lets the right browser through once. The VMs run on libvirt's test driver with a
fixed VNC port, so there is a screen to reach (tests/system opens real ones)."""
from __future__ import annotations

import hashlib
import threading
from datetime import timedelta

import pytest
from sqlalchemy import event

from loucloud.console.proxy import Gate
from loucloud.extensions import db
from loucloud.models import VM, ConsoleToken, Host, utcnow
from loucloud.services import console as console_service
from loucloud.services import settings as settings_service
from loucloud.services.hypervisors import pool
from tests.conftest import Client
from tests.factories import make_catalog, make_vm


def _give_a_screen(app, uri: str, uuid: str, port: int) -> None:
    """Give the (stopped) domain a VNC server on a fixed port: the test driver does not
    allocate autoport ones, so LouCloud's XML would have no screen to show."""
    def redefine(conn):
        xml = conn.lookupByUUIDString(uuid).XMLDesc(0)
        assert "port='-1' autoport='yes'" in xml
        conn.defineXML(xml.replace("port='-1' autoport='yes'", f"port='{port}' autoport='no'"))

    with app.app_context():
        pool().call(uri, redefine, timeout=10)


@pytest.fixture
def world(app, test_host, admin, user, other_user):
    """alice owns two running VMs with screens: "one" on VNC port 5901, "two" on 5902.
    Logged-in browsers for alice, bob and the administrator."""
    with app.app_context():
        template = make_catalog(("h1", test_host))
        vms = [make_vm(user.id, name, template.id, start=False) for name in ("one", "two")]
    alice, bob, boss = Client(app), Client(app), Client(app)
    for client, name in ((alice, "alice"), (bob, "bob"), (boss, "admin")):
        assert client.login(name).status_code == 302
    for vm, port in zip(vms, (5901, 5902)):
        _give_a_screen(app, test_host, vm.uuid, port)
        assert alice.post(f"/vms/{vm.id}/start").status_code == 302
    return {"alice": alice, "bob": bob, "admin": boss, "one": vms[0].id, "two": vms[1].id,
            "uri": test_host}


def issue(client, vm_id: int) -> str:
    """Press "Console": the token comes back in the fragment of the screen page's URL."""
    response = client.post(f"/vms/{vm_id}/console")
    assert response.status_code == 302
    path, _, token = response.headers["Location"].partition("#")
    assert path == f"/vms/{vm_id}/screen" and token
    return token


def open_screen(app, client, token):
    """What the console proxy does with a websocket handshake from this browser: the
    VNC address, or ConsoleRefused (a 403 before any byte of the screen)."""
    cookie = client.cookie() if client is not None else None
    screen = Gate(app).target(app.config["SITE_URL"], cookie, token)
    return screen.host, screen.port


def refusal(app, client, token) -> str:
    with pytest.raises(console_service.ConsoleRefused) as info:
        open_screen(app, client, token)
    return str(info.value)


def rows(app) -> list[ConsoleToken]:
    with app.app_context():
        found = db.session.execute(
            db.select(ConsoleToken).order_by(ConsoleToken.id)).scalars().all()
        for row in found:
            db.session.expunge(row)
        return found


def test_a_token_opens_its_vms_screen_once(app, world):
    token = issue(world["alice"], world["one"])
    assert open_screen(app, world["alice"], token) == ("127.0.0.1", 5901)
    assert refusal(app, world["alice"], token) == "token already used"
    token = issue(world["alice"], world["two"])
    assert open_screen(app, world["alice"], token) == ("127.0.0.1", 5902)


def test_the_administrator_may_open_any_console_but_others_get_no_token(app, world):
    token = issue(world["admin"], world["one"])
    assert open_screen(app, world["admin"], token) == ("127.0.0.1", 5901)
    assert world["bob"].post(f"/vms/{world['one']}/console").status_code == 404
    assert len(rows(app)) == 1


def test_only_the_hash_of_a_token_is_kept(app, world):
    token = issue(world["alice"], world["one"])
    [row] = rows(app)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() != token


def test_a_token_lives_as_long_as_the_settings_say(app, world):
    with app.app_context():
        settings_service.update_settings({"console_token_seconds": 90})
    issue(world["alice"], world["one"])
    [row] = rows(app)
    assert row.expires_at - row.created_at == timedelta(seconds=90)


def test_an_expired_token_is_refused(app, world):
    token = issue(world["alice"], world["one"])
    with app.app_context():
        row = db.session.execute(db.select(ConsoleToken)).scalar_one()
        row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert refusal(app, world["alice"], token) == "token expired"


def test_another_browser_cannot_use_a_token_and_does_not_spend_it(app, world):
    token = issue(world["alice"], world["one"])
    assert refusal(app, world["bob"], token) == "token presented by another session"
    assert refusal(app, None, token) == "token presented by another session"
    # A browser with a session cookie but nobody logged in (it only saw the login page).
    stranger = Client(app)
    stranger.get("/login")
    assert refusal(app, stranger, token) == "token presented by another session"
    assert open_screen(app, world["alice"], token) == ("127.0.0.1", 5901)


@pytest.mark.parametrize("token", ["", "x" * 42, "x" * 44, "../" + "x" * 40, "x" * 42 + "!",
                                   "x" * 42 + "\n", None, 42])
def test_malformed_tokens_are_refused_as_such(app, user, token):
    with app.app_context():
        with pytest.raises(console_service.ConsoleRefused, match="^malformed token$"):
            console_service.consume(token, user.id)


def test_a_well_formed_token_nobody_issued_is_unknown(app, world):
    issue(world["alice"], world["one"])
    assert refusal(app, world["alice"], "x" * 43) == "unknown token"


def test_two_handshakes_with_one_token_at_the_same_moment_get_one_screen(app, world):
    """Both pass the checks; the atomic UPDATE lets only one of them through. The second
    handshake is made to arrive exactly between the first one's checks and its UPDATE."""
    token = issue(world["alice"], world["one"])
    results = {}

    def second_handshake():
        try:
            results["second"] = open_screen(app, world["alice"], token)
        except console_service.ConsoleRefused as exc:
            results["second"] = str(exc)

    fired = []

    def before_update(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE CONSOLE_TOKENS") and not fired:
            fired.append(True)
            thread = threading.Thread(target=second_handshake)
            thread.start()
            thread.join(timeout=30)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", before_update)
    try:
        try:
            results["first"] = open_screen(app, world["alice"], token)
        except console_service.ConsoleRefused as exc:
            results["first"] = str(exc)
    finally:
        event.remove(engine, "before_cursor_execute", before_update)
    assert fired
    assert results == {"second": ("127.0.0.1", 5901), "first": "token already used"}


def test_a_vm_that_lost_its_screen_is_refused_not_a_crash(app, world):
    token = issue(world["alice"], world["one"])
    with app.app_context():
        uuid = db.session.get(VM, world["one"]).uuid
        pool().call(world["uri"], lambda conn: conn.lookupByUUIDString(uuid).destroy(),
                    timeout=10)
    assert refusal(app, world["alice"], token).startswith(f"VM {world['one']}: ")


def _flash_after(client, response) -> str:
    """The refusal the page shows at its top after the redirect."""
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    start = page.index('<div class="alert alert-danger')
    return page[page.index(">", start) + 1:page.index("<button", start)].strip()


def test_a_vm_whose_domain_is_gone_gets_no_token_and_the_page_says_why(app, world):
    with app.app_context():
        uuid = db.session.get(VM, world["one"]).uuid
        pool().call(world["uri"], lambda conn: (conn.lookupByUUIDString(uuid).destroy(),
                                                conn.lookupByUUIDString(uuid).undefine()),
                    timeout=10)
    alice = world["alice"]
    told = _flash_after(alice, alice.post(f"/vms/{world['one']}/console"))
    assert told.startswith("No console for one: ")
    assert rows(app) == []


def test_a_host_that_does_not_answer_gives_no_token_and_the_page_says_so(app, world,
                                                                         silent_socket):
    with app.app_context():
        settings_service.update_settings({"host_timeout": 1})
        host = db.session.execute(db.select(Host)).scalar_one()
        host.uri = silent_socket
        db.session.commit()
    alice = world["alice"]
    told = _flash_after(alice, alice.post(f"/vms/{world['one']}/console"))
    assert told.startswith("h1 does not answer: ")
    assert rows(app) == []


@pytest.mark.parametrize("action", ["poweroff", "delete"])
def test_stopping_or_deleting_a_vm_ends_its_tokens_only(app, world, action):
    ended, kept = issue(world["alice"], world["one"]), issue(world["alice"], world["two"])
    path = f"/vms/{world['one']}/delete" if action == "delete" else f"/vms/{world['one']}/poweroff"
    assert world["alice"].post(path).status_code == 302
    assert refusal(app, world["alice"], ended) == "unknown token"
    assert open_screen(app, world["alice"], kept) == ("127.0.0.1", 5902)


def test_logging_out_ends_the_users_tokens_only(app, world):
    mine, admins = issue(world["alice"], world["one"]), issue(world["admin"], world["one"])
    assert world["alice"].post("/logout").status_code == 302
    world["alice"].login("alice")
    assert refusal(app, world["alice"], mine) == "unknown token"
    assert open_screen(app, world["admin"], admins) == ("127.0.0.1", 5901)


def test_disabling_a_user_ends_their_tokens_only(app, world, user, admin):
    issue(world["alice"], world["one"])
    admins = issue(world["admin"], world["two"])
    assert world["admin"].post(f"/users/{user.id}/disable").status_code == 302
    assert [row.user_id for row in rows(app)] == [admin.id]
    assert open_screen(app, world["admin"], admins) == ("127.0.0.1", 5902)


def test_used_and_expired_tokens_are_not_kept(app, world):
    used = issue(world["alice"], world["one"])
    open_screen(app, world["alice"], used)
    issue(world["alice"], world["one"])  # expires below
    with app.app_context():
        newest = db.session.execute(
            db.select(ConsoleToken).order_by(ConsoleToken.id.desc())).scalars().first()
        newest.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    live = issue(world["alice"], world["two"])
    fresh = issue(world["admin"], world["one"])  # issuing sweeps the table
    hashes = {row.token_hash for row in rows(app)}
    assert hashes == {hashlib.sha256(t.encode()).hexdigest() for t in (live, fresh)}
