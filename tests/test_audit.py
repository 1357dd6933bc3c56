"""The audit log: who did what to what, when, with which result, from where; never a
password or a token; browsable and filterable by the administrator."""
from __future__ import annotations

import re

from loucloud.extensions import db
from loucloud.models import AuditEvent
from tests.conftest import PASSWORD, Client
from tests.factories import make_catalog, make_vm


def events(app) -> list[AuditEvent]:
    with app.app_context():
        rows = db.session.execute(db.select(AuditEvent).order_by(AuditEvent.id)).scalars().all()
        for row in rows:
            db.session.expunge(row)
        return rows


def test_state_changes_are_recorded_with_who_what_and_result(app, as_admin, user, test_host):
    as_admin.post("/users/new", {"username": "carol", "password": "carol's password",
                                 "confirm": "carol's password", "max_vms": 1, "max_vcpus": 1,
                                 "max_memory_mib": 512, "max_disk_gib": 5})
    with app.app_context():
        template = make_catalog(("h1", test_host))
        vm = make_vm(user.id, "audited", template.id, start=False)
    alice = Client(app)
    alice.login("alice")
    alice.post(f"/vms/{vm.id}/start")
    alice.post(f"/vms/{vm.id}/start")  # refused: already running
    rows = [(e.username, e.action, e.target, e.result, e.address) for e in events(app)]
    assert ("admin", "auth.login", "username 'admin'", "ok", "127.0.0.1") in rows
    assert ("admin", "users.create", "username 'carol'", "ok", "127.0.0.1") in rows
    assert ("alice", "vms.start", f"vm {vm.id}", "ok", "127.0.0.1") in rows
    refused = [e for e in events(app) if e.action == "vms.start" and e.result == "refused"]
    assert len(refused) == 1 and "the VM is running" in refused[0].message


def test_failed_logins_are_recorded_with_the_name_tried(app, anon, user):
    anon.login("alice", "wrong password!")
    anon.login("nobody", "wrong password!")
    failed = [(e.username, e.result, e.message) for e in events(app) if e.action == "auth.login"]
    assert ("alice", "refused", "Wrong user name or password.") in failed
    assert ("nobody", "refused", "Wrong user name or password.") in failed


def test_no_password_ever_reaches_the_log(app, as_admin, user):
    secrets = ["wrong password!", "a brand new secret", "reset by admin 1", PASSWORD]
    Client(app).login("alice", "wrong password!")
    alice = Client(app)
    alice.login("alice")
    alice.post("/profile", {"current_password": PASSWORD, "password": "a brand new secret",
                            "confirm": "a brand new secret"})
    as_admin.post(f"/users/{user.id}/password", {"password": "reset by admin 1",
                                                  "confirm": "reset by admin 1"})
    dump = repr([(e.username, e.target, e.message) for e in events(app)])
    for secret in secrets:
        assert secret not in dump
    assert {e.action for e in events(app)} >= {"users.profile", "users.reset_password"}


def test_anonymous_posts_are_refused_in_the_log(app, anon, user, test_host):
    anon.post("/users/new", {"username": "x"})
    [event] = [e for e in events(app) if e.action == "users.create"]
    assert (event.username, event.result) == ("", "refused")


def test_cli_changes_are_recorded(app, monkeypatch):
    monkeypatch.setenv("LOUCLOUD_USER_PASSWORD", "password of dave")
    runner = app.test_cli_runner()
    runner.invoke(args=["users", "create", "dave"])
    runner.invoke(args=["users", "create", "dave"])  # taken
    rows = [(e.action, e.target, e.result, e.address) for e in events(app)]
    assert rows[-2:] == [("users.create", "dave", "ok", "cli"),
                         ("users.create", "dave", "refused", "cli")]
    assert all(e.username.startswith("cli:") for e in events(app))


def test_audit_page_filters(app, as_admin, anon, user):
    anon.login("alice", "wrong password!")
    as_admin.post(f"/users/{user.id}/disable")

    def actions(query):
        page = as_admin.get(f"/audit/?{query}").get_data(as_text=True)
        return re.findall(r'<td class="font-monospace small">([^<]+)</td>', page)
    assert "users.disable" in actions("")
    assert set(actions("result=refused")) == {"auth.login"}
    assert set(actions("action=users.")) == {"users.disable"}
    assert set(actions("username=alice")) == {"auth.login"}
    assert actions("q=no-such-thing-anywhere") == []
    assert as_admin.get("/audit/?result=%3Cscript%3E").status_code == 200
