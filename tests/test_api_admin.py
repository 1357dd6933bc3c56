"""The administrator's resources of the REST API and everybody's own profile, on the
test:/// driver: users (a user made through the API logs in, a disabled user's token
stops working, a reset password is the one that works), SSH keys, hosts (a host added
answers with its figures, drain gives a task), networks and volumes as the hosts see
them, settings as the services read them, the audit log holding the API's own writes,
and the dashboard's figures."""
from __future__ import annotations

import pytest

from loucloud.extensions import db
from loucloud.models import Host, Task, User
from loucloud.services.hypervisors import pool
from loucloud.services.settings import get_settings
from tests.conftest import PASSWORD, Client
from tests.factories import make_catalog, make_vm, new_public_key, write_test_node
from tests.support.api import ApiClient, make_token
from tests.support.api_admin import stray_volume
from tests.test_access import STRAY

PROBLEM = "application/problem+json"
NEW_PASSWORD = "a brand new password 7"


@pytest.fixture
def boss(app, admin):
    return ApiClient(app, make_token(app, "admin"))


@pytest.fixture
def alice(app, user):
    return ApiClient(app, make_token(app, "alice"))


@pytest.fixture
def world(app, test_host, admin, user, other_user):
    """h1 with a template, and a shut-off VM of alice's on it."""
    with app.app_context():
        template = make_catalog(("h1", test_host))
        alice = db.session.execute(db.select(User).filter_by(username="alice")).scalar_one()
        vm = make_vm(alice.id, "web1", template.id, start=False)
        return {"host_uri": test_host, "host_id": vm.host_id, "vm_id": vm.id,
                "alice_id": alice.id, "template_id": template.id}


def _user(app, username: str) -> User | None:
    with app.app_context():
        user = db.session.execute(db.select(User).filter_by(username=username)).scalar()
        if user is not None:
            db.session.expunge(user)
        return user


def _on_host(app, uri: str, read):
    with app.app_context():
        return pool().call(uri, read, timeout=10)


# -- users -----------------------------------------------------------------------------
def test_a_user_created_through_the_api_logs_in_and_has_his_quota(app, boss):
    with app.app_context():
        defaults = get_settings()
    r = boss.post("/api/v1/users", json={"username": "carol", "password": NEW_PASSWORD,
                                         "full_name": "Carol C", "email": "c@example.org",
                                         "quota": {"vms": 2}})
    assert r.status_code == 201, r.json
    assert r.headers["Location"].endswith(f"/api/v1/users/{r.json['id']}")
    assert r.json["quota"] == {"vms": 2, "vcpus": defaults.default_max_vcpus,
                               "memory_mib": defaults.default_max_memory_mib,
                               "disk_gib": defaults.default_max_disk_gib}
    assert r.json["usage"]["used"] == {"vms": 0, "vcpus": 0, "memory_mib": 0, "disk_gib": 0}
    assert r.json["role"] == "user" and r.json["active"] is True
    assert Client(app).login("carol", NEW_PASSWORD).status_code == 302   # a real login
    assert boss.get(r.headers["Location"]).json["email"] == "c@example.org"
    carol = ApiClient(app, make_token(app, "carol"))
    me = carol.get("/api/v1/users/me").json
    assert (me["username"], me["full_name"], me["quota"]["vms"]) == ("carol", "Carol C", 2)
    # the service's own checks, each named
    again = boss.post("/api/v1/users", json={"username": "Carol", "password": NEW_PASSWORD})
    assert again.status_code == 422 and set(again.json["errors"]) == {"username"}
    weak = boss.post("/api/v1/users", json={"username": "dave", "password": "a" * 12})
    assert weak.status_code == 422 and set(weak.json["errors"]) == {"password"}
    bad = boss.post("/api/v1/users", json={"username": "dave", "password": NEW_PASSWORD,
                                           "email": "not an address"})
    assert bad.status_code == 422 and set(bad.json["errors"]) == {"email"}
    assert _user(app, "dave") is None


def test_the_user_list_filters_and_pages_as_the_page_does(app, boss, user, other_user):
    everyone = boss.get("/api/v1/users").json
    assert [u["username"] for u in everyone["items"]] == ["admin", "alice", "bob"]
    assert everyone["total"] == 3 and everyone["next"] is None
    assert [u["username"] for u in boss.get("/api/v1/users?q=ALI").json["items"]] == ["alice"]
    assert [u["username"] for u in boss.get("/api/v1/users?role=admin").json["items"]] \
        == ["admin"]
    boss.post(f"/api/v1/users/{_user(app, 'bob').id}/disable")
    assert [u["username"] for u in boss.get("/api/v1/users?status=disabled").json["items"]] \
        == ["bob"]
    first = boss.get("/api/v1/users?limit=2").json
    assert first["pages"] == 2 and [u["username"] for u in first["items"]] == ["admin", "alice"]
    assert [u["username"] for u in boss.get(first["next"]).json["items"]] == ["bob"]
    r = boss.get("/api/v1/users?role=root")
    assert r.status_code == 422 and set(r.json["errors"]) == {"role"}


def test_a_disabled_users_token_stops_working_and_enabling_brings_it_back(app, boss, user):
    secret = make_token(app, "alice")
    alice = ApiClient(app, secret)
    browser = Client(app)
    assert browser.login("alice").status_code == 302
    alice_id = alice.get("/api/v1/users/me").json["id"]
    r = boss.post(f"/api/v1/users/{alice_id}/disable")
    assert r.status_code == 200 and r.json["active"] is False
    refused = alice.get("/api/v1/vms")
    assert refused.status_code == 401 and "disabled" in refused.json["detail"]
    assert browser.get("/profile").status_code == 302          # her session ended too
    assert boss.post(f"/api/v1/users/{alice_id}/enable").json["active"] is True
    assert alice.get("/api/v1/vms").status_code == 200
    # the administrator cannot be disabled
    admin_id = boss.get("/api/v1/users/me").json["id"]
    r = boss.post(f"/api/v1/users/{admin_id}/disable")
    assert r.status_code == 403 and r.mimetype == PROBLEM
    assert _user(app, "admin").active


def test_patch_changes_only_what_is_sent(app, boss, user):
    url = f"/api/v1/users/{_user(app, 'alice').id}"
    r = boss.patch(url, json={"full_name": "Alice A", "quota": {"vcpus": 3}})
    assert r.status_code == 200, r.json
    row = _user(app, "alice")
    assert (row.full_name, row.max_vcpus, row.max_vms, row.username) == ("Alice A", 3, 5,
                                                                        "alice")
    assert boss.patch(url, json={"email": None}).json["email"] is None
    r = boss.patch(url, json={"quota": {"vms": -1}})
    assert r.status_code == 422 and set(r.json["errors"]) == {"quota.vms"}
    r = boss.patch(url, json={"username": "admin"})
    assert r.status_code == 422 and set(r.json["errors"]) == {"username"}
    r = boss.patch(url, json={"colour": "blue"})
    assert r.status_code == 422 and set(r.json["errors"]) == {"colour"}
    assert boss.patch(url, json={"username": "alicia"}).json["username"] == "alicia"
    assert Client(app).login("alicia").status_code == 302


def test_a_reset_password_is_the_one_that_works(app, boss, user):
    alice_id = _user(app, "alice").id
    r = boss.post(f"/api/v1/users/{alice_id}/password", json={"password": NEW_PASSWORD})
    assert r.status_code == 200, r.json
    assert Client(app).login("alice").status_code != 302
    assert Client(app).login("alice", NEW_PASSWORD).status_code == 302
    r = boss.post(f"/api/v1/users/{alice_id}/password", json={"password": "short"})
    assert r.status_code == 422 and set(r.json["errors"]) == {"password"}


def test_a_user_changes_his_own_password(app, alice):
    r = alice.post("/api/v1/users/me/password", json={"current_password": "wrong one",
                                                      "password": NEW_PASSWORD})
    assert r.status_code == 422 and set(r.json["errors"]) == {"current_password"}
    r = alice.post("/api/v1/users/me/password", json={"current_password": PASSWORD,
                                                      "password": NEW_PASSWORD})
    assert r.status_code == 200
    assert Client(app).login("alice", NEW_PASSWORD).status_code == 302
    assert alice.get("/api/v1/users/me").status_code == 200     # tokens go on


def test_deleting_a_user_is_refused_while_he_owns_vms(app, boss, world):
    url = f"/api/v1/users/{world['alice_id']}"
    r = boss.delete(url)
    assert r.status_code == 409 and "owns 1 VM" in r.json["detail"]
    bob = _user(app, "bob")
    r = boss.delete(f"/api/v1/users/{bob.id}")
    assert r.status_code == 200 and r.json["message"] == "User bob deleted."
    assert _user(app, "bob") is None
    assert boss.get(f"/api/v1/users/{bob.id}").status_code == 404
    admin_id = boss.get("/api/v1/users/me").json["id"]
    assert boss.delete(f"/api/v1/users/{admin_id}").status_code == 403


def test_quota_usage_counts_the_users_vms(app, boss, world):
    alice = ApiClient(app, make_token(app, "alice"))
    used = {"vms": 1, "vcpus": 1, "memory_mib": 512, "disk_gib": 2}
    assert boss.get(f"/api/v1/users/{world['alice_id']}/quota").json["used"] == used
    me = alice.get("/api/v1/users/me").json
    assert me["usage"]["used"] == used and me["usage"]["total"]["vms"] == 5
    r = alice.get(f"/api/v1/users/{world['alice_id']}/quota")
    assert r.status_code == 403 and r.mimetype == PROBLEM          # the administrator's


def test_a_users_own_ssh_keys(app, alice, other_user):
    line = new_public_key("alice@laptop")
    r = alice.post("/api/v1/users/me/keys", json={"key": line})
    assert r.status_code == 201, r.json
    key = r.json
    assert key["name"] == "alice@laptop" and key["fingerprint"].startswith("SHA256:")
    assert r.headers["Location"].endswith(f"/api/v1/users/me/keys/{key['id']}")
    assert [k["id"] for k in alice.get("/api/v1/users/me/keys").json["items"]] == [key["id"]]
    again = alice.post("/api/v1/users/me/keys", json={"key": line})
    assert again.status_code == 422 and set(again.json["errors"]) == {"key"}
    bad = alice.post("/api/v1/users/me/keys", json={"key": "ssh-rsa AAAA"})
    assert bad.status_code == 422 and set(bad.json["errors"]) == {"key"}
    bob = ApiClient(app, make_token(app, "bob"))
    assert bob.get("/api/v1/users/me/keys").json["items"] == []
    assert bob.get(r.headers["Location"]).status_code == 404
    assert bob.delete(r.headers["Location"]).status_code == 404
    assert alice.delete(r.headers["Location"]).status_code == 200
    assert alice.get("/api/v1/users/me/keys").json["items"] == []


# -- hosts -----------------------------------------------------------------------------
def test_a_host_added_through_the_api_answers_with_its_figures(app, boss, tmp_path):
    uri = write_test_node(tmp_path / "h2.xml", cpus=6, memory_mib=4096)
    r = boss.post("/api/v1/hosts", json={"name": "h2", "uri": uri})
    assert r.status_code == 201, r.json
    assert (r.json["cpus"], r.json["memory_mib"], r.json["online"]) == (6, 4096, True)
    assert r.headers["Location"].endswith(f"/api/v1/hosts/{r.json['id']}")
    listed = boss.get("/api/v1/hosts").json
    assert [(h["name"], h["online"], h["vms"]) for h in listed["items"]] == [("h2", True, 0)]
    r2 = boss.post("/api/v1/hosts", json={"name": "h3", "uri": uri})
    assert r2.status_code == 422 and set(r2.json["errors"]) == {"uri"}
    r3 = boss.post("/api/v1/hosts", json={"name": "h3", "uri": "qemu+ssh://x/nowhere"})
    assert r3.status_code == 422 and set(r3.json["errors"]) == {"uri"}
    url = r.headers["Location"]
    assert boss.delete(url).status_code == 200
    assert boss.get(url).status_code == 404
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Host.id))) == 0


def test_patch_refresh_and_the_hosts_figures(app, boss, world):
    url = f"/api/v1/hosts/{world['host_id']}"
    r = boss.patch(url, json={"accepts_vms": False, "migration_address": "10.9.9.9"})
    assert r.status_code == 200, r.json
    assert (r.json["accepts_vms"], r.json["migration_address"]) == (False, "10.9.9.9")
    with app.app_context():
        host = db.session.get(Host, world["host_id"])
        assert (host.accepts_vms, host.migration_address) == (False, "10.9.9.9")
        host.cpus = 99
        db.session.commit()
    r = boss.patch(url, json={"migration_address": "not an address!"})
    assert r.status_code == 422 and set(r.json["errors"]) == {"migration_address"}
    assert boss.patch(url, json={"migration_address": None}).json["migration_address"] is None
    assert boss.post(url + "/refresh").json["cpus"] == 4        # read from the host again
    got = boss.get(url).json
    assert got["vms"] == 1 and got["online"] is True and got["drain"] is None
    r = boss.delete(url)
    assert r.status_code == 409 and "still holds 1" in r.json["detail"]
    r = boss.post(url + "/forget")
    assert r.status_code == 409 and "answers" in r.json["detail"]
    series = boss.get(url + "/metrics?range=day").json
    assert series["range"] == "day" and isinstance(series["cpu_percent"], list)
    assert boss.get(url + "/metrics?range=year").status_code == 422


def test_drain_answers_202_with_its_task_and_undrain_cancels_it(app, boss, world):
    url = f"/api/v1/hosts/{world['host_id']}"
    r = boss.post(url + "/drain")
    assert r.status_code == 202, r.json
    assert r.headers["Location"].endswith(f"/api/v1/tasks/{r.json['id']}")
    assert r.json["kind"] == "host.drain"
    with app.app_context():
        assert db.session.get(Host, world["host_id"]).draining
        assert db.session.get(Task, r.json["id"]).target_id == world["host_id"]
    got = boss.get(url).json
    assert got["draining"] and got["drain"]["task"]["id"] == r.json["id"]
    assert [t["id"] for t in got["tasks"]] == [r.json["id"]]
    assert boss.post(url + "/drain").status_code == 409            # one at a time
    r = boss.post(url + "/undrain")
    assert r.status_code == 200 and r.json["draining"] is False
    with app.app_context():
        assert db.session.get(Task, got["drain"]["task"]["id"]).cancel_requested


def test_copy_images_says_when_there_is_nothing_to_copy(app, boss, world):
    r = boss.post(f"/api/v1/hosts/{world['host_id']}/copy-images")
    assert r.status_code == 409 and "every image" in r.json["detail"]


# -- networks and volumes ----------------------------------------------------------------
def _networks(app, uri) -> dict[str, bool]:
    return _on_host(app, uri, lambda conn: {n.name(): bool(n.isActive())
                                            for n in conn.listAllNetworks(0)})


def test_a_network_made_and_stopped_through_the_api(app, boss, world):
    r = boss.post("/api/v1/networks", json={"name": "lab", "subnet": "10.50.0.0/24",
                                            "host_ids": [world["host_id"]]})
    assert r.status_code == 201, r.json
    assert r.json["hosts"] == [{"host_id": world["host_id"], "host": "h1", "made": True,
                                "error": None}]
    assert _networks(app, world["host_uri"]) == {"default": True, "lab": True}
    listed = boss.get(r.headers["Location"]).json
    assert [(n["name"], n["subnet"], n["managed"], n["mode"]) for n in listed["items"]] == \
        [("lab", "10.50.0.0/24", True, "NAT")]
    assert boss.get("/api/v1/networks").json["total"] == 2
    r = boss.post("/api/v1/networks/actions/stop",
                  json={"host_id": world["host_id"], "name": "lab"})
    assert r.status_code == 200 and "lab stopped on h1" in r.json["message"]
    assert _networks(app, world["host_uri"])["lab"] is False
    for body, field in (({"name": "lab2", "subnet": "8.8.8.0/24"}, "subnet"),
                        ({"name": "lab", "subnet": "10.60.0.0/24"}, "name"),
                        ({"name": "lab3", "subnet": "10.70.0.0/24", "host_ids": [999]},
                         "host_ids")):
        r = boss.post("/api/v1/networks", json=body)
        assert r.status_code == 422 and set(r.json["errors"]) == {field}, r.json
    r = boss.post("/api/v1/networks/actions/start", json={"host_id": 999, "name": "lab"})
    assert r.status_code == 422 and set(r.json["errors"]) == {"host_id"}
    assert set(_networks(app, world["host_uri"])) == {"default", "lab"}


def test_volumes_with_their_owners_and_an_orphan_deleted(app, boss, world):
    stray_volume(app, world)
    listed = boss.get("/api/v1/volumes").json
    owners = {v["name"]: v["owner"] for v in listed["items"]}
    assert owners[STRAY] == "" and listed["pool"] == "loucloud"
    assert any(o.startswith("VM web1 of alice") for o in owners.values())
    orphans = boss.get("/api/v1/volumes?orphans=true").json["items"]
    assert [v["name"] for v in orphans] == [STRAY] and orphans[0]["orphan"]
    owned = next(n for n, o in owners.items() if o.startswith("VM web1"))
    r = boss.delete(f"/api/v1/volumes/{world['host_id']}/{owned}")
    assert r.status_code == 409 and "belongs to VM web1" in r.json["detail"]
    r = boss.delete(f"/api/v1/volumes/{world['host_id']}/{STRAY}")
    assert r.status_code == 200 and "deleted" in r.json["message"]
    on_host = _on_host(app, world["host_uri"], lambda conn: conn.storagePoolLookupByName(
        "loucloud").listVolumes())
    assert STRAY not in on_host and owned in on_host
    assert boss.delete(f"/api/v1/volumes/{world['host_id']}/{STRAY}").status_code == 404


# -- settings, audit, metrics ------------------------------------------------------------
def test_settings_changed_through_the_api_are_the_ones_in_force(app, boss):
    got = boss.get("/api/v1/settings").json
    spec = next(s for s in got["specs"] if s["key"] == "console_token_seconds")
    assert (spec["minimum"], spec["maximum"], spec["type"]) == (10, 3600, "integer")
    assert got["values"]["console_token_seconds"] == got["defaults"]["console_token_seconds"]
    r = boss.patch("/api/v1/settings", json={"console_token_seconds": 90,
                                             "storage_pool": "fast"})
    assert r.status_code == 200, r.json
    assert r.json["changed"] == ["console_token_seconds", "storage_pool"]
    with app.app_context():
        settings = get_settings()
        assert (settings.console_token_seconds, settings.storage_pool) == (90, "fast")
    # out of bounds, each named; and all or nothing: the service's own check of one
    # value refuses the others with it
    r = boss.patch("/api/v1/settings", json={"console_token_seconds": 5,
                                             "snapshots_per_vm": 101})
    assert r.status_code == 422
    assert set(r.json["errors"]) == {"console_token_seconds", "snapshots_per_vm"}
    r = boss.patch("/api/v1/settings", json={"vnc_listen": "0.0.0.0", "network": "lab"})
    assert r.status_code == 422 and set(r.json["errors"]) == {"vnc_listen"}
    r = boss.patch("/api/v1/settings", json={"no_such_setting": 1})
    assert r.status_code == 422 and set(r.json["errors"]) == {"no_such_setting"}
    with app.app_context():
        assert (get_settings().network, get_settings().console_token_seconds) == \
            ("default", 90)
    assert boss.patch("/api/v1/settings", json={}).json["changed"] == []


def test_the_audit_log_holds_the_apis_own_writes(app, boss, user):
    alice_id = _user(app, "alice").id
    boss.post(f"/api/v1/users/{alice_id}/disable")
    boss.post("/api/v1/users", json={"username": "x", "password": NEW_PASSWORD})  # refused
    events = boss.get("/api/v1/audit-events").json
    assert [(e["action"], e["result"], e["username"]) for e in events["items"][:2]] == [
        ("api_users.create_user", "refused", "admin"),
        ("api_users.disable_user", "ok", "admin")]
    assert events["items"][1]["target"] == f"user {alice_id}"
    refused = boss.get("/api/v1/audit-events?result=refused").json["items"]
    assert [e["action"] for e in refused] == ["api_users.create_user"]
    assert "username" in refused[0]["message"]
    assert boss.get("/api/v1/audit-events?action=api_users.dis").json["total"] == 1
    assert boss.get("/api/v1/audit-events?username=alice").json["total"] == 0
    assert boss.get("/api/v1/audit-events?result=maybe").status_code == 422


def test_metrics_are_the_pool_for_the_administrator_and_ones_own_for_a_user(app, boss,
                                                                             world):
    pool_view = boss.get("/api/v1/metrics").json
    assert pool_view["scope"] == "pool"
    assert [h["name"] for h in pool_view["hosts"]] == ["h1"]
    total = pool_view["capacity"][-1]
    assert (total["name"], total["vcpus_used"], total["memory_used_mib"]) == \
        ("All hosts", 1, 512)
    assert pool_view["states"] == {"shut off": 1}
    assert "usage" not in pool_view
    alice = ApiClient(app, make_token(app, "alice"))
    mine = alice.get("/api/v1/metrics").json
    assert mine["scope"] == "user" and mine["states"] == {"shut off": 1}
    assert mine["usage"]["used"]["vms"] == 1 and [v["name"] for v in mine["vms"]] == ["web1"]
    assert "hosts" not in mine and "events" not in mine
    bob = ApiClient(app, make_token(app, "bob"))
    assert bob.get("/api/v1/metrics").json["states"] == {}


def test_only_the_administrator_reaches_his_resources(app, alice):
    for url in ("/api/v1/users", "/api/v1/hosts", "/api/v1/networks", "/api/v1/volumes",
                "/api/v1/settings", "/api/v1/audit-events"):
        r = alice.get(url)
        assert r.status_code == 403 and r.mimetype == PROBLEM, url
    # refused before its body is read: a bad body is still 403, not 422
    r = alice.post("/api/v1/users", json={"username": ""})
    assert r.status_code == 403
