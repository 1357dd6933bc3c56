"""The store the watcher keeps, and pages that read it: states and host health written
from syncs and events, the watcher's lease (one across LouCloud servers), pages that ask
no host while it beats, the database-side state filter, the stream of changes, and the
fall-back to asking hosts (said to the administrator) when it stops.

libvirt's test driver keeps one hypervisor per connection, so a watch's own connection
would not see the app's changes: the watch itself is tested on the lab's real hosts
(tests/system/test_watcher.py); here the store is fed what a watch would report."""
from __future__ import annotations

import json
import re
import threading
import time
from datetime import timedelta

import pytest

from loucloud.extensions import db
from loucloud.models import VM, Host, WorkerLease, utcnow
from loucloud.services import leases, watching
from loucloud.services.hypervisors import pool
from loucloud.virt.watch import GONE, DomainState
from tests.conftest import Client
from tests.factories import make_catalog, make_user, make_vm


@pytest.fixture
def fleet(app, test_host):
    """alice's VMs "a" (running) and "b" (shut off) and bob's "c" on h1; admin."""
    with app.app_context():
        make_user("admin", is_admin=True)
        alice, bob = make_user("alice"), make_user("bob")
        template = make_catalog(("h1", test_host))
        vms = {"a": make_vm(alice.id, "a", template.id),
               "b": make_vm(alice.id, "b", template.id, start=False),
               "c": make_vm(bob.id, "c", template.id)}
    return {name: vm for name, vm in vms.items()}


def beat(app, seconds_ago: float = 0) -> None:
    """The watcher's lease, as if it had just beaten (or ``seconds_ago``)."""
    with app.app_context():
        assert leases.acquire(watching.LEASE, "tests:1", ttl=10)
        row = db.session.get(WorkerLease, watching.LEASE)
        row.beat_at = utcnow() - timedelta(seconds=seconds_ago)
        db.session.commit()


def sync(app, test_host, states: dict[str, str]) -> int:
    now = time.time()
    with app.app_context():
        return watching.apply_sync(test_host, {uuid: DomainState(uuid, state, "", now)
                                               for uuid, state in states.items()},
                                   watching._dt(now))


def stored(app, vm) -> VM:
    with app.app_context():
        row = db.session.get(VM, vm.id)
        db.session.expunge(row)
        return row


def client(app, name) -> Client:
    c = Client(app)
    c.login(name)
    return c


# -- the lease ---------------------------------------------------------------------------
def test_one_holder_at_a_time_and_a_takeover_when_it_stops_beating(ctx):
    assert leases.acquire("watcher", "server-1:10", ttl=10)
    assert leases.acquire("watcher", "server-1:10", ttl=10)      # renewed
    assert not leases.acquire("watcher", "server-2:20", ttl=10)  # held
    db.session.get(WorkerLease, "watcher").expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert leases.acquire("watcher", "server-2:20", ttl=10)      # ran out: taken over
    assert not leases.acquire("watcher", "server-1:10", ttl=10)
    leases.release("watcher", "server-2:20")
    assert leases.last_beat("watcher") is None
    assert leases.acquire("watcher", "server-1:10", ttl=10)      # released: free at once


def test_fresh_only_while_it_beats(app):
    with app.app_context():
        assert not watching.fresh()
    beat(app)
    with app.app_context():
        assert watching.fresh()
    beat(app, seconds_ago=11)
    with app.app_context():
        assert not watching.fresh()


# -- writing the store -------------------------------------------------------------------
def test_a_sync_writes_every_vm_of_the_host_and_marks_the_missing(app, fleet, test_host):
    changed = sync(app, test_host, {fleet["a"].uuid: "paused", fleet["b"].uuid: "shut off",
                                    "not-ours-at-all": "running"})
    assert changed == 2          # a: running -> paused; c: running -> missing
    a, b, c = (stored(app, fleet[n]) for n in "abc")
    assert (a.live_state, b.live_state, c.live_state) == ("paused", "shut off", "missing")
    before = a.live_changed_at
    assert sync(app, test_host, {fleet["a"].uuid: "paused", fleet["b"].uuid: "shut off",
                                 fleet["c"].uuid: "missing"}) == 0
    assert stored(app, fleet["a"]).live_changed_at == before   # confirmed, not changed
    assert stored(app, fleet["a"]).live_at > before


def test_an_event_changes_one_vm_and_one_not_ours_changes_nothing(app, fleet, test_host):
    with app.app_context():
        assert watching.apply_change(test_host, DomainState(fleet["b"].uuid, "running",
                                                            "booted", time.time(), "lifecycle"))
        assert not watching.apply_change(test_host, DomainState("6f1c7c9e-0000-0000-0000-"
                                                                "000000000000", "running", "",
                                                                time.time()))
        assert watching.apply_change(test_host, DomainState(fleet["a"].uuid, GONE, "",
                                                            time.time(), "undefined"))
    b, a = stored(app, fleet["b"]), stored(app, fleet["a"])
    assert (b.live_state, b.live_reason, b.live_event) == ("running", "booted", "lifecycle")
    assert a.live_state == "missing"


def test_host_health_offline_since_and_back(app, fleet, test_host):
    with app.app_context():
        watching.apply_health(test_host, False, "keepalive timed out")
        host = db.session.execute(db.select(Host)).scalar_one()
        since = host.offline_since
        assert since is not None and host.last_error == "keepalive timed out"
        watching.apply_health(test_host, False, "still gone")
        assert db.session.execute(db.select(Host)).scalar_one().offline_since == since
        watching.apply_health(test_host, True, None)
        host = db.session.execute(db.select(Host)).scalar_one()
        assert host.offline_since is None and host.last_error is None


# -- pages read the store ----------------------------------------------------------------
def test_pages_ask_no_host_while_the_watcher_beats(app, fleet, test_host):
    sync(app, test_host, {fleet["a"].uuid: "paused", fleet["b"].uuid: "shut off",
                          fleet["c"].uuid: "running"})
    beat(app)
    alice, admin = client(app, "alice"), client(app, "admin")
    with app.app_context():
        before = pool().calls[test_host]
    page = alice.get("/").get_data(as_text=True)
    assert re.search(rf'data-vm-row="{fleet["a"].id}">.*?data-state="paused"', page, re.S)
    assert alice.get(f"/vms/states.json?ids={fleet['a'].id}").get_json()[
        str(fleet["a"].id)]["state"] == "paused"
    assert alice.get(f"/vms/{fleet['a'].id}").status_code == 200
    assert alice.get(f"/vms/{fleet['a'].id}.json").get_json()["state_at"]
    assert admin.get("/dashboard").status_code == 200
    result = app.test_cli_runner().invoke(args=["vms", "list", "--json"])
    assert {r["name"]: r["state"] for r in json.loads(result.output)} == \
        {"a": "paused", "b": "shut off", "c": "running"}
    with app.app_context():
        assert pool().calls[test_host] == before, "a page asked the host"
    assert "watcher-notice" not in admin.get("/").get_data(as_text=True)


def test_the_state_filter_is_done_in_the_database(app, fleet, test_host):
    sync(app, test_host, {fleet["a"].uuid: "paused", fleet["b"].uuid: "shut off",
                          fleet["c"].uuid: "paused"})
    beat(app)
    admin = client(app, "admin")
    with app.app_context():
        before = pool().calls[test_host]
    page = admin.get("/?state=paused").get_data(as_text=True)
    assert "2 VMs" in page and ">a<" in page and ">c<" in page and ">b<" not in page
    with app.app_context():
        assert pool().calls[test_host] == before
        watching.apply_health(test_host, False, "gone")
    page = admin.get("/?state=host+offline").get_data(as_text=True)
    assert "3 VMs" in page


def test_without_a_watcher_pages_ask_the_hosts_and_say_so(app, fleet, test_host):
    sync(app, test_host, {fleet["a"].uuid: "paused"})   # a stale store says "paused"
    beat(app, seconds_ago=60)
    admin = client(app, "admin")
    with app.app_context():
        before = pool().calls[test_host]
    page = admin.get("/").get_data(as_text=True)
    assert 'id="watcher-notice"' in page and "manage.py watch" in page
    assert admin.get(f"/vms/{fleet['a'].id}.json").get_json()["state"] == "running"
    with app.app_context():
        assert pool().calls[test_host] > before
    assert 'id="watcher-notice"' not in client(app, "alice").get("/").get_data(as_text=True)


def test_an_action_puts_its_result_in_the_store_at_once(app, fleet, test_host):
    beat(app)
    alice = client(app, "alice")
    assert alice.post(f"/vms/{fleet['a'].id}/pause").status_code == 302
    assert stored(app, fleet["a"]).live_state == "paused"
    assert alice.get(f"/vms/{fleet['a'].id}.json").get_json()["state"] == "paused"


# -- the stream of changes ---------------------------------------------------------------
def events(response) -> list:
    out = []
    for block in response.get_data(as_text=True).split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: "):
                out.extend(json.loads(line[6:]) if line[6:].startswith("[") else [line[6:]])
            elif line.startswith("event: "):
                out.append(line[7:])
    return out


def test_the_stream_pushes_changes_of_the_users_own_vms_only(app, fleet, test_host):
    beat(app)
    app.config["EVENT_STREAM_SECONDS"] = 1.5
    alice = client(app, "alice")

    def later():
        time.sleep(0.6)
        sync(app, test_host, {fleet["a"].uuid: "paused", fleet["b"].uuid: "shut off",
                              fleet["c"].uuid: "paused"})
    threading.Thread(target=later).start()
    seen = events(alice.get("/vms/events"))
    assert {(e["id"], e["state"]) for e in seen} == {(fleet["a"].id, "paused")}
    assert "resume" in seen[0]["actions"] and "pause" not in seen[0]["actions"]


def test_without_a_watcher_the_stream_says_poll(app, fleet):
    assert events(client(app, "alice").get("/vms/events")) == ["poll", "{}"]


def test_a_change_between_two_streams_is_not_lost(app, fleet, test_host):
    """The stream ends (55 s in production) and the browser comes back with the last
    event id it saw: what changed in between comes first."""
    beat(app)
    alice = client(app, "alice")
    first = alice.get("/vms/events").get_data(as_text=True)
    last_id = [line[4:] for line in first.splitlines() if line.startswith("id: ")][-1]
    sync(app, test_host, {fleet["a"].uuid: "paused", fleet["b"].uuid: "shut off",
                          fleet["c"].uuid: "running"})
    again = alice.get("/vms/events", headers={"Last-Event-ID": last_id})
    assert [(e["id"], e["state"]) for e in events(again)] == [(fleet["a"].id, "paused")]
    fresh_start = events(alice.get("/vms/events", headers={"Last-Event-ID": "garbage"}))
    assert fresh_start == []    # an id that is not ours: from now on


def test_a_sampler_stands_by_while_another_servers_holds_the_lease(app, fleet):
    from loucloud.models import HostSample
    from loucloud.services.monitoring import sampler

    with app.app_context():
        assert leases.acquire(sampler.LEASE, "other-server:1", ttl=60)
        stop = threading.Event()
        threading.Timer(0.5, stop.set).start()
        sampler.run(stop)
        assert db.session.execute(db.select(db.func.count(HostSample.id))).scalar() == 0
        leases.release(sampler.LEASE, "other-server:1")
        sampler.run(threading.Event(), once=True)
        assert db.session.execute(db.select(db.func.count(HostSample.id))).scalar() == 1
