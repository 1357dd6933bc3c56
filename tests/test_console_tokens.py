"""Console tokens (services/console.py): one-time, short-lived, bound to one user and one
VM. The token logic runs before the VNC lookup, so it is tested here on libvirt's test
driver; the screen itself (the proxy, RFB bytes) is tests/system/test_console.py.

The test driver gives no port to LouCloud's autoport VNC graphics (the VM "has no
screen"), but it keeps a fixed port: `factories.give_screen` restarts a VM's domain with
one, so that issue_token and consume can go all the way. On a VM without a screen, consume
refuses *after* it has taken the token (asserted too)."""
from __future__ import annotations

import hashlib
import threading
from datetime import timedelta

import pytest

from loucloud.extensions import db
from loucloud.models import VM, ConsoleToken, User, utcnow
from loucloud.services import Conflict
from loucloud.services import console as console_service
from loucloud.services import settings as settings_service
from loucloud.services.console import ConsoleRefused
from loucloud.services.vms import lifecycle
from tests.factories import give_screen, make_catalog, make_user, make_vm

SCREEN = console_service.Screen("127.0.0.1", 5907, None)  # the test driver: no password


def make_world(app, uri: str, *, screen: bool = True) -> dict[str, int]:
    """admin, alice (owner of the running VM "mine") and bob."""
    with app.app_context():
        admin = make_user("admin", is_admin=True)
        alice = make_user("alice")
        bob = make_user("bob")
        template = make_catalog(("h1", uri))
        vm = make_vm(alice.id, "mine", template.id)
    if screen:
        give_screen(app, uri, vm.uuid)
    return {"admin": admin.id, "alice": alice.id, "bob": bob.id, "vm": vm.id}


@pytest.fixture
def world(app, test_host):
    return make_world(app, test_host)


def issue(app, user_id: int, vm_id: int) -> str:
    with app.app_context():
        return console_service.issue_token(db.session.get(User, user_id),
                                           db.session.get(VM, vm_id))


def consume(app, token: str, session_user_id: int | None):
    with app.app_context():
        return console_service.consume(token, session_user_id)


def refusal(app, token: str, session_user_id: int | None) -> str:
    with pytest.raises(ConsoleRefused) as info:
        consume(app, token, session_user_id)
    return str(info.value)


def rows(app) -> list[tuple]:
    """(token_hash, user_id, vm_id, used) of every stored token."""
    with app.app_context():
        return [(t.token_hash, t.user_id, t.vm_id, t.used_at is not None)
                for t in db.session.execute(db.select(ConsoleToken)).scalars()]


def used(app, token: str) -> bool:
    digest = hashlib.sha256(token.encode()).hexdigest()
    [flag] = [u for h, _, _, u in rows(app) if h == digest]
    return flag


def store_token(app, user_id: int, vm_id: int, *, seconds: int = 60) -> str:
    """A token stored as issue_token stores it, without asking the host for a screen."""
    token = "T" * 11 + hashlib.sha256(f"{user_id}-{vm_id}-{seconds}".encode()).hexdigest()[:32]
    now = utcnow()
    with app.app_context():
        db.session.add(ConsoleToken(token_hash=hashlib.sha256(token.encode()).hexdigest(),
                                    user_id=user_id, vm_id=vm_id, created_at=now,
                                    expires_at=now + timedelta(seconds=seconds)))
        db.session.commit()
    return token


def expire(app) -> None:
    with app.app_context():
        for row in db.session.execute(db.select(ConsoleToken)).scalars():
            row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()


# -- one use -----------------------------------------------------------------------------
def test_a_token_gives_the_screen_once(app, world):
    token = issue(app, world["alice"], world["vm"])
    assert console_service.TOKEN_RE.match(token)
    assert consume(app, token, world["alice"]) == SCREEN
    assert used(app, token)
    assert refusal(app, token, world["alice"]) == "token already used"
    assert refusal(app, token, world["alice"]) == "token already used"


def test_only_the_hash_is_stored_and_it_is_bound_to_user_and_vm(app, world):
    token = issue(app, world["alice"], world["vm"])
    [(digest, user_id, vm_id, is_used)] = rows(app)
    assert digest == hashlib.sha256(token.encode()).hexdigest() != token
    assert (user_id, vm_id, is_used) == (world["alice"], world["vm"], False)


def test_each_issue_is_a_new_token_each_good_once(app, world):
    first, second = (issue(app, world["alice"], world["vm"]) for _ in range(2))
    assert first != second
    assert consume(app, second, world["alice"]) == SCREEN
    assert consume(app, first, world["alice"]) == SCREEN
    assert refusal(app, first, world["alice"]) == "token already used"


def test_the_administrator_gets_a_token_for_any_vm(app, world):
    token = issue(app, world["admin"], world["vm"])
    assert refusal(app, token, world["alice"]) == "token presented by another session"
    assert consume(app, token, world["admin"]) == SCREEN


def test_a_vm_without_a_screen_gets_no_token(app, test_host):
    world = make_world(app, test_host, screen=False)
    with pytest.raises(Conflict, match="mine has no screen to show: The VM has no VNC "
                                       "screen. Start it first."):
        issue(app, world["alice"], world["vm"])
    assert rows(app) == []


def test_a_stopped_vm_gets_no_token(app, world):
    with app.app_context():
        lifecycle.act_on_vm(db.session.get(VM, world["vm"]), "poweroff")
    with pytest.raises(Conflict, match="The VM is not running"):
        issue(app, world["alice"], world["vm"])
    assert rows(app) == []


def test_without_a_screen_the_token_is_taken_before_the_refusal(app, test_host):
    """On the plain test driver: the token logic passes, the VNC lookup refuses, and the
    token is used up all the same (the proxy never gets two tries)."""
    world = make_world(app, test_host, screen=False)
    token = store_token(app, world["alice"], world["vm"])
    assert refusal(app, token, world["alice"]) == \
        f"VM {world['vm']}: The VM has no VNC screen."
    assert used(app, token)
    assert refusal(app, token, world["alice"]) == "token already used"


# -- the wrong session -------------------------------------------------------------------
@pytest.mark.parametrize("presenter", ["bob", "admin", None])
def test_another_session_is_refused_and_does_not_use_the_token(app, world, presenter):
    token = issue(app, world["alice"], world["vm"])
    session_user = world[presenter] if presenter else None
    for _ in range(2):
        assert refusal(app, token, session_user) == "token presented by another session"
    assert not used(app, token)
    assert consume(app, token, world["alice"]) == SCREEN


def test_a_user_who_lost_the_vm_is_refused(app, world):
    """The token is checked against who may use the VM *now* (services/access.py)."""
    token = issue(app, world["alice"], world["vm"])
    with app.app_context():
        db.session.get(VM, world["vm"]).owner_id = world["bob"]
        db.session.commit()
    assert refusal(app, token, world["alice"]) == "no access to this VM any more"
    assert used(app, token)


def test_a_disabled_users_tokens_end(app, world):
    from loucloud.services import users as user_service

    token = issue(app, world["alice"], world["vm"])
    with app.app_context():
        user_service.set_active(db.session.get(User, world["alice"]), False)
    assert refusal(app, token, world["alice"]) == "unknown token"


def test_stopping_the_vm_ends_its_tokens(app, world):
    token = issue(app, world["alice"], world["vm"])
    with app.app_context():
        lifecycle.act_on_vm(db.session.get(VM, world["vm"]), "poweroff")
    assert refusal(app, token, world["alice"]) == "unknown token"


# -- time --------------------------------------------------------------------------------
def test_an_expired_token_is_refused_and_stays_unused(app, world):
    token = issue(app, world["alice"], world["vm"])
    expire(app)
    assert refusal(app, token, world["alice"]) == "token expired"
    assert not used(app, token)
    assert refusal(app, token, world["alice"]) == "token expired"


def test_an_expired_token_of_another_session_is_refused_too(app, world):
    token = issue(app, world["alice"], world["vm"])
    expire(app)
    assert refusal(app, token, world["bob"]) == "token expired"


def test_the_lifetime_comes_from_the_settings(app, world):
    with app.app_context():
        settings_service.update_settings({"console_token_seconds": 30})
    issue(app, world["alice"], world["vm"])
    with app.app_context():
        [row] = db.session.execute(db.select(ConsoleToken)).scalars().all()
        assert row.expires_at - row.created_at == timedelta(seconds=30)


def test_issuing_clears_used_and_expired_tokens(app, world):
    spent = issue(app, world["alice"], world["vm"])
    consume(app, spent, world["alice"])
    stale = store_token(app, world["bob"], world["vm"], seconds=-5)
    fresh = issue(app, world["alice"], world["vm"])
    digests = {h for h, *_ in rows(app)}
    assert digests == {hashlib.sha256(fresh.encode()).hexdigest()}
    assert refusal(app, stale, world["bob"]) == "unknown token"


# -- two at once -------------------------------------------------------------------------
@pytest.mark.parametrize("consumers", [2, 8])
def test_consumers_at_once_exactly_one_wins(any_app, test_host, consumers):
    """Threads, each in its own app context (its own connection), present the same token
    at the same moment, on the SQLite file and on MariaDB: one gets the screen, every
    other one is told the token is used. Several rounds, to meet the race more than
    once."""
    app = any_app
    world = make_world(app, test_host)
    for _ in range(5):
        token = issue(app, world["alice"], world["vm"])
        outcomes: list[object] = []
        barrier = threading.Barrier(consumers)

        def one():
            with app.app_context():
                barrier.wait()
                try:
                    outcomes.append(console_service.consume(token, world["alice"]))
                except ConsoleRefused as exc:
                    outcomes.append(str(exc))
                finally:
                    db.session.remove()

        threads = [threading.Thread(target=one) for _ in range(consumers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes, key=str) == \
            [SCREEN] + ["token already used"] * (consumers - 1), outcomes
        assert used(app, token)
