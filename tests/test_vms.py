"""The VM lifecycle on libvirt's test driver: create, quota, names, placement, actions,
ownership, listing with live state, delete."""
from __future__ import annotations

import json
import re
import threading

import pytest

from loucloud.extensions import db
from loucloud.models import VM, Host, Template, User
from loucloud.services import settings as settings_service
from loucloud.services.vms import create as vm_create
from loucloud.services.vms import lifecycle as vm_service
from loucloud.services.hypervisors import pool
from loucloud.virt import xml
from tests.conftest import Client
from tests.factories import make_catalog, make_user, make_vm


@pytest.fixture
def catalog(app, test_host):
    """Host h1 (test driver) with the image base.qcow2 and the template "small"
    (1 vCPU, 512 MiB, 2 GiB)."""
    with app.app_context():
        template = make_catalog(("h1", test_host))
    return template


def host_call(app, uri, fn, *args):
    """Run fn(conn, *args) on the app's own connection to the host (the test driver's
    state lives in that connection)."""
    with app.app_context():
        return pool().call(uri, fn, *args, timeout=10)


def domains_on(app, uri) -> dict[str, str]:
    """{name: state} of every domain on the host."""
    def names(conn):
        return {d.name(): ("running" if d.isActive() else "shut off")
                for d in conn.listAllDomains(0)}
    return host_call(app, uri, names)


def volumes_in(app, uri, pool_name="loucloud") -> dict[str, str]:
    """{volume name: XML} of a pool on the host ({} when the pool does not exist)."""
    def vols(conn):
        names = [p.name() for p in conn.listAllStoragePools(0)]
        if pool_name not in names:
            return {}
        p = conn.storagePoolLookupByName(pool_name)
        return {v.name(): v.XMLDesc(0) for v in p.listAllVolumes(0)}
    return host_call(app, uri, vols)


def vms(app) -> list[VM]:
    with app.app_context():
        rows = db.session.execute(db.select(VM).order_by(VM.id)).scalars().all()
        for row in rows:
            db.session.expunge(row)
        return rows


def create(client, name, template_id, **extra):
    data = {"name": name, "template_id": template_id, "host_id": 0, "start": "y"}
    data.update(extra)
    if extra.get("start") is False:
        del data["start"]
    return client.post("/vms/new", data)


# -- create --------------------------------------------------------------------------
def test_create_starts_a_vm_on_an_overlay_disk(app, as_user, catalog, test_host):
    response = create(as_user, "web-1", catalog.id)
    assert response.status_code == 302, response.get_data(as_text=True)
    [vm] = vms(app)
    assert (vm.name, vm.status, vm.vcpus, vm.memory_mib, vm.disk_gib) == \
        ("web-1", "ready", 1, 512, 2)
    assert domains_on(app, test_host) == {vm.domain_name: "running"}
    assert vm.domain_name != vm.name and vm.domain_name.startswith("lc-")
    volume = xml.parse_volume(volumes_in(app, test_host)[vm.volume_name])
    assert volume.format == "qcow2" and volume.capacity == 2 * 1024 ** 3
    assert (volume.backing_path, volume.backing_format) == \
        ("/var/lib/images/base.qcow2", "qcow2")
    page = as_user.get(response.headers["Location"]).get_data(as_text=True)
    assert 'data-state="running"' in page
    assert re.search(r'<span class="vm-action" data-action="poweroff">', page)  # shown
    assert re.search(r'<span class="vm-action d-none" data-action="start">', page)  # hidden


def test_domain_xml_is_what_the_spec_says(app, as_user, catalog, test_host):
    create(as_user, "box", catalog.id)
    [vm] = vms(app)
    desc = xml.parse_domain(host_call(
        app, test_host, lambda conn: conn.lookupByUUIDString(vm.uuid).XMLDesc(0)))
    assert desc.title == "box" and desc.uuid == vm.uuid
    assert desc.domain_type == "test"  # the host offers neither kvm nor qemu
    assert desc.clock == "utc"
    assert desc.vnc_listen == "127.0.0.1"
    assert desc.networks == ("default",) and desc.macs == (vm.mac,)
    assert desc.loucloud_vm == vm.id


def test_windows_images_get_a_localtime_clock(app, as_admin, test_host):
    with app.app_context():
        from loucloud.services import images, hosts, templates as template_service
        hosts.add_host("h1", test_host)
        image = images.add_image("win", "/var/lib/images/base.raw", "windows")
        template = template_service.create_template("w", template_service.Sizes(1, 512, 2), image)
        admin_id = db.session.execute(db.select(User.id).filter_by(username="admin")).scalar()
        vm = make_vm(admin_id, "win-1", template.id)
    desc = xml.parse_domain(host_call(
        app, test_host, lambda conn: conn.lookupByUUIDString(vm.uuid).XMLDesc(0)))
    assert desc.clock == "localtime"


def test_left_off_when_asked(app, as_user, catalog, test_host):
    create(as_user, "quiet", catalog.id, start=False)
    [vm] = vms(app)
    assert domains_on(app, test_host) == {vm.domain_name: "shut off"}


def test_placement_only_picks_hosts_where_the_network_is_active(app, as_user, catalog,
                                                                test_host):
    with app.app_context():
        settings_service.update_settings({"network": "nowhere"})
    response = create(as_user, "lonely", catalog.id)
    assert response.status_code == 503
    assert "there is no network nowhere" in response.get_data(as_text=True)
    assert vms(app) == [] and domains_on(app, test_host) == {}


def test_a_host_chosen_without_the_network_gives_no_nic_and_the_page_says_why(
        app, as_admin, catalog, test_host):
    with app.app_context():
        settings_service.update_settings({"network": "nowhere"})
        host_id = db.session.execute(db.select(Host.id)).scalar()
    response = create(as_admin, "lonely", catalog.id, host_id=host_id)
    [vm] = vms(app)
    assert vm.mac is None and vm.nic_kind is None
    page = as_admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "no network card" in page and "there is no network nowhere on h1" in page


@pytest.mark.parametrize("name", ["a b", "<x>", "a</name><devices>", "it's", 'q"q',
                                  "a&b", "", "x" * 65, "é", "../etc"])
def test_bad_names_are_form_errors_and_reach_no_host(app, as_user, catalog, test_host, name):
    response = create(as_user, name, catalog.id)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "is-invalid" in page
    assert vms(app) == [] and domains_on(app, test_host) == {}


def test_names_are_unique_per_owner(app, as_user, catalog, other_user):
    assert create(as_user, "same", catalog.id).status_code == 302
    response = create(as_user, "same", catalog.id)
    assert response.status_code == 400
    assert "already have a VM named same" in response.get_data(as_text=True)
    bob = Client(app)
    bob.login("bob")
    assert create(bob, "same", catalog.id).status_code == 302
    assert len(vms(app)) == 2


# -- quota ---------------------------------------------------------------------------
@pytest.mark.parametrize("quota,message", [
    ({"max_vms": 1}, "VMs 1 in use + 1 would exceed 1"),
    ({"max_vcpus": 1}, "vCPUs 1 in use + 1 would exceed 1"),
    ({"max_memory_mib": 1000}, "memory (MiB) 512 in use + 512 would exceed 1000"),
    ({"max_disk_gib": 3}, "disk (GiB) 2 in use + 2 would exceed 3"),
])
def test_quota_is_enforced(app, catalog, test_host, quota, message):
    with app.app_context():
        make_user("carol", **quota)
    carol = Client(app)
    carol.login("carol")
    assert create(carol, "one", catalog.id).status_code == 302
    response = create(carol, "two", catalog.id)
    assert response.status_code == 409
    assert message in response.get_data(as_text=True)
    assert len(vms(app)) == 1 and len(domains_on(app, test_host)) == 1


@pytest.fixture(params=["sqlite", "mariadb"])
def any_app(request):
    """The app on SQLite, then on a real MariaDB host."""
    return request.getfixturevalue("app" if request.param == "sqlite" else "mysql_app")


def test_twenty_concurrent_creates_never_exceed_the_quota(any_app, test_host):
    app = any_app
    with app.app_context():
        catalog = make_catalog(("h1", test_host))
        carol = make_user("carol", max_vms=5)
    outcomes = []
    barrier = threading.Barrier(20)

    def one(i):
        with app.app_context():
            owner = db.session.get(User, carol.id)
            template = db.session.get(Template, catalog.id)
            db.session.commit()  # give the connection back while waiting at the barrier
            barrier.wait()
            try:
                vm_create.create_vm(owner, f"vm-{i}", template)
                outcomes.append("ok")
            except vm_create.QuotaExceeded:
                outcomes.append("quota")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] * 5 + ["quota"] * 15
    assert len(vms(app)) == 5
    assert len(domains_on(app, test_host)) == 5
    assert len(volumes_in(app, test_host)) == 5


# -- placement -----------------------------------------------------------------------
def test_placement_prefers_free_memory_and_respects_the_switch(app, test_host, test_host2):
    with app.app_context():
        template = make_catalog(("h1", test_host), ("h2", test_host2))
        owner = make_user("carol")
        first = make_vm(owner.id, "a", template.id)
        h2 = db.session.execute(db.select(Host).filter_by(name="h2")).scalar()
        assert first.host_id == h2.id  # 16 GiB free against 8 GiB
        h2.accepts_vms = False
        db.session.commit()
        second = make_vm(owner.id, "b", template.id)
        assert second.host_id != h2.id
        # The administrator may still choose it.
        third = make_vm(owner.id, "c", template.id, host_id=h2.id)
        assert third.host_id == h2.id


def test_no_host_with_the_image(app, as_user, catalog):
    with app.app_context():
        for host in db.session.execute(db.select(Host)).scalars():
            host.accepts_vms = False
        db.session.commit()
    response = create(as_user, "nowhere", catalog.id)
    assert response.status_code == 503
    assert "No host accepting new VMs holds the image" in response.get_data(as_text=True)
    assert vms(app) == []


# -- actions -------------------------------------------------------------------------
def act(client, vm_id, action, json_=False):
    headers = {"Accept": "application/json"} if json_ else {}
    return client.post(f"/vms/{vm_id}/{action}", headers=headers)


def state_of(client, vm_id):
    return json.loads(client.get(f"/vms/{vm_id}.json").get_data(as_text=True))["state"]


def test_actions_follow_the_state(app, as_user, catalog):
    create(as_user, "cycle", catalog.id, start=False)
    [vm] = vms(app)
    assert state_of(as_user, vm.id) == "shut off"
    for action, expected in [("start", "running"), ("pause", "paused"), ("resume", "running"),
                             ("reset", "running"), ("reboot", "running"),
                             ("poweroff", "shut off")]:
        response = act(as_user, vm.id, action, json_=True)
        assert response.status_code == 200, (action, response.get_data(as_text=True))
        assert state_of(as_user, vm.id) == expected, action


@pytest.mark.parametrize("setup,action,message", [
    ([], "start", "the VM is running"),
    (["poweroff"], "shutdown", "the VM is shut off"),
    (["poweroff"], "pause", "the VM is shut off"),
    ([], "resume", "the VM is running"),
])
def test_actions_that_do_not_fit_are_refused_with_409(app, as_user, catalog, setup, action,
                                                      message):
    create(as_user, "refuse", catalog.id)
    [vm] = vms(app)
    for step in setup:
        act(as_user, vm.id, step)
    response = act(as_user, vm.id, action, json_=True)
    assert response.status_code == 409
    assert message in response.get_json()["error"]
    page = act(as_user, vm.id, action).headers["Location"]
    assert message in as_user.get(page).get_data(as_text=True)


def test_two_concurrent_actions_one_success_one_refusal(app, as_user, catalog):
    create(as_user, "race", catalog.id, start=False)
    [vm] = vms(app)
    codes = []
    barrier = threading.Barrier(2)
    clients = [Client(app), Client(app)]
    for c in clients:
        c.login("alice")

    def go(c):
        barrier.wait()
        codes.append(act(c, vm.id, "start", json_=True).status_code)

    threads = [threading.Thread(target=go, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200, 409]
    assert state_of(as_user, vm.id) == "running"


def test_busy_vm_refuses_other_actions(app, as_user, catalog):
    create(as_user, "busy", catalog.id)
    [vm] = vms(app)
    with app.app_context():
        row = db.session.get(VM, vm.id)
        row.status = "starting"
        db.session.commit()
    response = act(as_user, vm.id, "poweroff", json_=True)
    assert response.status_code == 409 and "busy" in response.get_json()["error"]


# -- ownership -----------------------------------------------------------------------
def test_other_users_can_neither_see_nor_touch(app, as_user, catalog, other_user, test_host):
    create(as_user, "mine", catalog.id)
    [vm] = vms(app)
    bob = Client(app)
    bob.login("bob")
    assert "mine" not in bob.get("/").get_data(as_text=True)
    assert bob.get(f"/vms/{vm.id}").status_code == 404
    assert bob.get(f"/vms/{vm.id}.json").status_code == 404
    for action in vm_service.ACTIONS:
        assert act(bob, vm.id, action).status_code == 404
    assert bob.post(f"/vms/{vm.id}/delete").status_code == 404
    assert domains_on(app, test_host) == {vm.domain_name: "running"}
    assert vms(app)[0].status == "ready"


def test_admin_sees_everything_with_owner_and_host(app, as_admin, as_user, catalog):
    create(as_user, "alices", catalog.id)
    page = as_admin.get("/").get_data(as_text=True)
    assert "alices" in page and "<th>Owner</th>" in page
    assert re.search(r"<td>alice</td>\s*<td>h1</td>", page)


# -- list and state ------------------------------------------------------------------
def test_missing_domain_and_offline_host_are_shown(app, as_user, catalog, test_host,
                                                   tmp_path):
    create(as_user, "gone", catalog.id)
    [vm] = vms(app)
    host_call(app, test_host, lambda c: (c.lookupByUUIDString(vm.uuid).destroy(),
                                         c.lookupByUUIDString(vm.uuid).undefine()))
    with app.app_context():
        dead = Host(name="dead", uri=f"qemu+unix:///system?socket={tmp_path / 'x.sock'}")
        db.session.add(dead)
        db.session.flush()
        ghost = VM(name="ghost", owner_id=vm.owner_id, host_id=dead.id,
                   template_id=catalog.id, image_id=catalog.image_id, domain_name="lc-ghost",
                   uuid="11111111-2222-3333-4444-555555555555", vcpus=1, memory_mib=1,
                   disk_gib=1, status=VM.READY)
        db.session.add(ghost)
        db.session.commit()
    page = as_user.get("/").get_data(as_text=True)
    assert 'data-state="missing"' in page and 'data-state="host offline"' in page
    detail = as_user.get(f"/vms/{vm.id}").get_data(as_text=True)
    assert "missing on h1" in detail


def test_state_filter_and_search(app, as_user, catalog):
    create(as_user, "up-1", catalog.id)
    create(as_user, "down-1", catalog.id, start=False)
    def names(query):
        page = as_user.get(f"/?{query}").get_data(as_text=True)
        return set(re.findall(r'href="/vms/\d+">([^<]+)</a>', page))
    assert names("") == {"up-1", "down-1"}
    assert names("state=running") == {"up-1"}
    assert names("state=shut+off") == {"down-1"}
    assert names("q=down") == {"down-1"}


def test_domains_not_made_by_loucloud_are_not_adopted(app, as_admin, catalog, test_host):
    host_call(app, test_host, lambda c: c.defineXML(
        "<domain type='test'><name>foreign</name><memory>1024</memory>"
        "<os><type>hvm</type></os></domain>"))
    page = as_admin.get("/").get_data(as_text=True)
    assert "foreign" not in page


# -- delete --------------------------------------------------------------------------
def test_delete_removes_domain_and_overlay_but_never_the_image(app, as_user, catalog,
                                                                test_host):
    create(as_user, "doomed", catalog.id)
    [vm] = vms(app)
    response = as_user.post(f"/vms/{vm.id}/delete", follow_redirects=True)
    assert "doomed was deleted with its disk" in response.get_data(as_text=True), \
        re.findall(r'alert-\w+[^>]*>\s*([^<]+)', response.get_data(as_text=True))
    assert vms(app) == []
    assert domains_on(app, test_host) == {}
    assert volumes_in(app, test_host) == {}
    assert "base.qcow2" in volumes_in(app, test_host, "images")
    page = as_user.get("/profile").get_data(as_text=True)
    assert "0 / 5" in page  # the quota is free again


def test_delete_on_an_offline_host_keeps_the_vm_with_the_reason(app, as_user, catalog,
                                                                tmp_path):
    create(as_user, "stranded", catalog.id)
    [vm] = vms(app)
    with app.app_context():
        host = db.session.get(Host, vm.host_id)
        host.uri = f"qemu+unix:///system?socket={tmp_path / 'gone.sock'}"
        db.session.commit()
    response = as_user.post(f"/vms/{vm.id}/delete", headers={"Accept": "application/json"})
    assert response.status_code == 503
    assert "delete it again when the host is back" in response.get_json()["error"]
    [kept] = vms(app)
    assert kept.status == "error" and "Delete did not finish" in kept.last_error


def test_refused_actions_leave_the_error_of_a_vm_as_it_was(app, as_user, catalog, tmp_path):
    """A failed delete leaves the VM in error with the reason; an action then refused
    (409: it does not fit the state; 503: the host is down) changes neither."""
    create(as_user, "stranded", catalog.id)
    [vm] = vms(app)
    with app.app_context():
        row = db.session.get(VM, vm.id)
        row.status, row.last_error = VM.ERROR, "Delete did not finish: host gone"
        db.session.commit()
    assert act(as_user, vm.id, "start", json_=True).status_code == 409
    assert act(as_user, vm.id, "resume").status_code == 302
    [kept] = vms(app)
    assert (kept.status, kept.last_error) == (VM.ERROR, "Delete did not finish: host gone")
    with app.app_context():
        host = db.session.get(Host, vm.host_id)
        host.uri = f"qemu+unix:///system?socket={tmp_path / 'gone.sock'}"
        db.session.commit()
    assert act(as_user, vm.id, "poweroff", json_=True).status_code == 503
    [kept] = vms(app)
    assert (kept.status, kept.last_error) == (VM.ERROR, "Delete did not finish: host gone")


# -- command line --------------------------------------------------------------------
def test_cli_lifecycle(app, test_host, monkeypatch):
    with app.app_context():
        make_user("admin", is_admin=True)
        make_user("carol")
    run = app.test_cli_runner().invoke
    assert run(args=["hosts", "add", "h1", test_host]).exit_code == 0
    result = run(args=["images", "add", "base", "/var/lib/images/base.qcow2"])
    assert result.exit_code == 0, result.output
    assert run(args=["templates", "add", "small", "--image", "base", "--vcpus", "1",
                     "--memory", "256", "--disk", "1"]).exit_code == 0
    result = run(args=["vms", "create", "cli-1", "--owner", "carol", "--template", "small"])
    assert result.exit_code == 0, result.output
    rows = json.loads(run(args=["vms", "list", "--json"]).output)
    assert [(r["name"], r["owner"], r["state"]) for r in rows] == [("cli-1", "carol", "running")]
    assert run(args=["vms", "pause", "cli-1", "--owner", "carol"]).exit_code == 0
    refused = run(args=["vms", "pause", "cli-1", "--owner", "carol"])
    assert refused.exit_code == 1 and refused.output.startswith("error: Cannot pause")
    assert run(args=["templates", "delete", "small"]).exit_code == 1
    assert run(args=["vms", "delete", "cli-1", "--owner", "carol"]).exit_code == 0
    assert json.loads(run(args=["vms", "list", "--json"]).output) == []
    assert run(args=["templates", "delete", "small"]).exit_code == 0
    assert run(args=["images", "delete", "base"]).exit_code == 0
    images = json.loads(run(args=["images", "list", "--json"]).output)
    assert images == []
