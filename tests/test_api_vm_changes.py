"""The REST API's VM verbs beyond the lifecycle (api/vm_disks.py, api/vm_changes.py) on
libvirt's test driver, through a personal token: disks, resize, snapshots, the saved
state, rebuild, clone (202 and its task), migration (the administrator's), install
media, the guest password, live status and metrics. Each answer is checked with what a
user of the API would notice afterwards: the host's definition and volumes, the rows,
the quota. What the test driver cannot do (grow a volume, hot-plug, migrate, first-boot
data) is answered with the service's refusal, and that refusal changes nothing."""
from __future__ import annotations

import libvirt
import pytest

from loucloud.extensions import db
from loucloud.models import VM, Image, ImageLocation, Task, User
from loucloud.services import tasks as task_service
from loucloud.services import users as user_service
from loucloud.services.monitoring import sampler as sampler_service
from loucloud.virt import xml
from tests.conftest import IMAGE_FILES, IMAGES
from tests.factories import make_catalog, write_test_node
from tests.support.api import ApiClient, make_token
from tests.support.vms import domains_on, host_call, volumes_in

PROBLEM = "application/problem+json"
CONFIG = libvirt.VIR_DOMAIN_XML_INACTIVE


@pytest.fixture
def catalog(app, test_host, admin, user, other_user):
    with app.app_context():
        return make_catalog(("h1", test_host)).id


@pytest.fixture
def alice(app, user):
    return ApiClient(app, make_token(app, "alice"))


@pytest.fixture
def root(app, admin):
    return ApiClient(app, make_token(app, "admin"))


def new_vm(client, template_id, name="box", start=False) -> dict:
    r = client.post("/api/v1/vms", json={"name": name, "template_id": template_id,
                                         "start": start})
    assert r.status_code == 201, r.json
    return r.json


def row(app, vm_id) -> VM:
    with app.app_context():
        vm = db.session.get(VM, vm_id)
        if vm is not None:
            db.session.expunge(vm)
        return vm


def targets(app, uri, uuid, flags=CONFIG) -> dict[str, str]:
    return {d.target: d.path for d in xml.parse_disks(host_call(
        app, uri, lambda c: c.lookupByUUIDString(uuid).XMLDesc(flags)))}


def disk_gib(app, username="alice") -> int:
    with app.app_context():
        user = db.session.execute(db.select(User).filter_by(username=username)).scalar_one()
        return user_service.quota_usage(user).used.disk_gib


def snapshots_on_host(app, uri, uuid) -> list[str]:
    return host_call(app, uri, lambda c: sorted(
        s.getName() for s in c.lookupByUUIDString(uuid).listAllSnapshots(0)))


def problem(r, status: int, text: str = "", field: str | None = None) -> None:
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.mimetype == PROBLEM and r.json["status"] == status
    assert text in r.json.get("detail", ""), r.json
    if field is not None:
        assert field in r.json["errors"], r.json


# -- disks ----------------------------------------------------------------------------------
def test_a_disk_added_listed_detached_attached_and_deleted(app, alice, catalog, test_host):
    vm = new_vm(alice, catalog)
    base = f"/api/v1/vms/{vm['id']}/disks"
    r = alice.post(base, json={"size_gib": 5})
    assert r.status_code == 201, r.json
    assert r.json["message"] == \
        "A 5 GiB disk vdb was added to box; the VM sees it as /dev/vdb at its next start."
    assert r.json["disk"] == {"target": "vdb", "size_gib": 5, "system": False,
                              "attached": True, "volume": r.json["disk"]["volume"]}
    assert r.headers["Location"].endswith(f"{base}/vdb")
    uuid = row(app, vm["id"]).uuid
    assert list(targets(app, test_host, uuid)) == ["vda", "vdb"]
    assert r.json["disk"]["volume"] in volumes_in(app, test_host)
    assert disk_gib(app) == 7
    # listed with what the host says of each
    listed = alice.get(base).json
    assert (listed["total"], listed["error"]) == (2, None)
    vda, vdb = listed["items"]
    assert (vda["target"], vda["system"], vda["capacity_bytes"]) == ("vda", True, 2 << 30)
    assert (vdb["capacity_bytes"], vdb["allocation_bytes"], vdb["found"], vdb["held"]) == \
        (5 << 30, 0, True, False)
    assert alice.get(r.headers["Location"]).json == vdb
    # detached: out of the definition, the volume kept and counted
    r = alice.post(f"{base}/vdb/detach")
    assert r.status_code == 200 and "vdb was detached from box" in r.json["message"]
    assert r.json["disk"]["attached"] is False
    assert list(targets(app, test_host, uuid)) == ["vda"] and disk_gib(app) == 7
    problem(alice.post(f"{base}/vdb/detach"), 409, "detached already")
    # attached again
    r = alice.post(f"{base}/vdb/attach")
    assert r.status_code == 200 and r.json["disk"]["attached"] is True
    assert list(targets(app, test_host, uuid)) == ["vda", "vdb"]
    # deleted: the volume goes, the quota is freed
    volume = r.json["disk"]["volume"]
    r = alice.delete(f"{base}/vdb")
    assert r.status_code == 200
    assert r.json["message"] == "Disk vdb of box was deleted; its 5 GiB are free in the quota."
    assert volume not in volumes_in(app, test_host) and disk_gib(app) == 2
    assert [d["target"] for d in alice.get(base).json["items"]] == ["vda"]
    problem(alice.get(f"{base}/vdb"), 404, "box has no disk 'vdb'")


def test_the_system_disk_stays_and_an_unknown_disk_is_404(app, alice, catalog, test_host):
    vm = new_vm(alice, catalog)
    base = f"/api/v1/vms/{vm['id']}/disks"
    problem(alice.post(f"{base}/vda/detach"), 409, "system disk")
    problem(alice.delete(f"{base}/vda"), 409, "system disk")
    problem(alice.post(f"{base}/vda/attach"), 409, "always attached")
    for r in (alice.post(f"{base}/vdq/detach"), alice.post(f"{base}/vdq/grow",
                                                            json={"size_gib": 9}),
              alice.delete(f"{base}/vdq"), alice.get(f"{base}/vdq")):
        problem(r, 404, "box has no disk 'vdq'")
    assert list(targets(app, test_host, row(app, vm["id"]).uuid)) == ["vda"]


@pytest.mark.parametrize("size", [0, -3, 65537, 2.5, "5", True, None, 10 ** 30])
def test_a_bad_size_is_422_naming_it_and_adds_nothing(app, alice, catalog, test_host, size):
    vm = new_vm(alice, catalog)
    before = volumes_in(app, test_host)
    problem(alice.post(f"/api/v1/vms/{vm['id']}/disks", json={"size_gib": size}), 422,
            field="size_gib")
    problem(alice.post(f"/api/v1/vms/{vm['id']}/disks/vda/grow", json={"size_gib": size}),
            422, field="size_gib")
    assert volumes_in(app, test_host) == before and disk_gib(app) == 2


def test_growing_says_why_not_and_keeps_the_size(app, alice, catalog):
    vm = new_vm(alice, catalog)
    grow = f"/api/v1/vms/{vm['id']}/disks/vda/grow"
    problem(alice.post(grow, json={"size_gib": 1}), 422, "a disk cannot shrink", "size_gib")
    # the test driver cannot resize a volume: the host's refusal
    problem(alice.post(grow, json={"size_gib": 4}), 400, "Growing vda of box failed on h1")
    assert row(app, vm["id"]).disk_gib == 2 and disk_gib(app) == 2
    assert row(app, vm["id"]).status == "ready"


def test_over_quota_a_disk_is_refused_with_409(app, alice, catalog, test_host):
    vm = new_vm(alice, catalog)
    before = volumes_in(app, test_host)
    problem(alice.post(f"/api/v1/vms/{vm['id']}/disks", json={"size_gib": 99}), 409,
            "Over quota: disk (GiB) 2 in use + 99 would exceed 100")
    assert volumes_in(app, test_host) == before and disk_gib(app) == 2


def test_another_users_vm_is_404_for_every_verb(app, alice, catalog, test_host):
    vm = new_vm(alice, catalog)
    alice.post(f"/api/v1/vms/{vm['id']}/disks", json={"size_gib": 1})
    bob = ApiClient(app, make_token(app, "bob"))
    base = f"/api/v1/vms/{vm['id']}"
    for method, path, body in [
            ("GET", "/disks", None), ("POST", "/disks", {"size_gib": 1}),
            ("POST", "/disks/vdb/detach", None), ("DELETE", "/disks/vdb", None),
            ("POST", "/resize", {"vcpus": 2}), ("GET", "/hardware", None),
            ("GET", "/snapshots", None), ("POST", "/snapshots", {"name": "x"}),
            ("POST", "/rebuild", None), ("POST", "/clone", {"name": "mine"}),
            ("GET", "/media", None), ("DELETE", "/media", None),
            ("POST", "/password", {"password": "a brand new password 7"}),
            ("GET", "/live", None), ("GET", "/metrics", None)]:
        r = bob.open(method, base + path, json=body)
        problem(r, 404)
    assert [(d["target"], d["attached"]) for d in alice.get(f"{base}/disks").json["items"]] \
        == [("vda", True), ("vdb", True)]
    assert row(app, vm["id"]).vcpus == 1


# -- resize ---------------------------------------------------------------------------------
def test_a_stopped_vm_resized_gets_its_sizes_at_its_next_start(app, alice, catalog, test_host):
    vm = new_vm(alice, catalog)
    r = alice.post(f"/api/v1/vms/{vm['id']}/resize", json={"vcpus": 2, "memory_mib": 1024})
    assert r.status_code == 200, r.json
    assert r.json["message"] == \
        "box now has 2 vCPUs and 1024 MiB of memory; it gets them at its next start."
    assert (r.json["running"], r.json["now"]) == (False, [])
    assert [d["field"] for d in r.json["at_next_boot"]] == ["vcpus", "memory_mib"]
    assert (r.json["vm"]["vcpus"], r.json["vm"]["memory_mib"]) == (2, 1024)
    desc = xml.parse_domain(host_call(app, test_host, lambda c: c.lookupByUUIDString(
        row(app, vm["id"]).uuid).XMLDesc(CONFIG)))
    assert (desc.vcpus, desc.memory_mib) == (2, 1024)


def test_a_running_vm_says_what_applies_now_and_what_at_its_next_boot(app, alice, catalog):
    vm = new_vm(alice, catalog, start=True)
    url = f"/api/v1/vms/{vm['id']}/resize"
    r = alice.post(url, json={"vcpus": 3, "memory_mib": 1536})
    assert r.status_code == 200, r.json
    assert (r.json["running"], r.json["now"], r.json["at_next_boot"]) == \
        (True, ["vcpus", "memory_mib"], [])
    assert r.json["message"] == "box now has 3 vCPUs and 1536 MiB of memory, running."
    # past the room it was started with (4 vCPUs): at its next boot, and why
    r = alice.post(url, json={"vcpus": 6})
    assert (r.json["now"], r.json["at_next_boot"]) == \
        ([], [{"field": "vcpus", "reason": "it runs with room for 4"}])
    hardware = alice.get(f"/api/v1/vms/{vm['id']}/hardware").json
    assert hardware["pending"] == "At its next boot: 6 vCPUs (now 3)."
    assert hardware["vcpus"] == 3 and hardware["disks"]["vda"]["capacity_bytes"] == 2 << 30


@pytest.mark.parametrize("body, field, text", [
    ({"vcpus": 0}, "vcpus", ""), ({"vcpus": 241}, "vcpus", ""), ({"vcpus": "2"}, "vcpus", ""),
    ({"memory_mib": 32}, "memory_mib", ""), ({"memory_mib": 1.5}, "memory_mib", ""),
    ({}, "vcpus", "Say the new vCPUs"), ({"vcpus": 1, "memory_mib": 512}, "vcpus",
                                         "has these sizes already")])
def test_a_bad_resize_is_422_naming_the_field(app, alice, catalog, body, field, text):
    vm = new_vm(alice, catalog)
    problem(alice.post(f"/api/v1/vms/{vm['id']}/resize", json=body), 422, text, field)
    assert (row(app, vm["id"]).vcpus, row(app, vm["id"]).memory_mib) == (1, 512)


def test_a_resize_over_quota_is_409(app, alice, catalog):
    vm = new_vm(alice, catalog)
    problem(alice.post(f"/api/v1/vms/{vm['id']}/resize", json={"vcpus": 9}), 409,
            "Over quota: vCPUs 1 in use + 8 would exceed 8")
    assert row(app, vm["id"]).vcpus == 1


# -- snapshots and the saved state ------------------------------------------------------------
def test_a_snapshot_taken_listed_reverted_and_deleted(app, alice, catalog, test_host):
    vm = new_vm(alice, catalog, start=True)
    uuid = row(app, vm["id"]).uuid
    base = f"/api/v1/vms/{vm['id']}/snapshots"
    r = alice.post(base, json={"name": "before"})
    assert r.status_code == 201, r.json
    assert "with its running machine" in r.json["message"]
    assert (r.json["snapshot"]["name"], r.json["snapshot"]["kind"]) == ("before", "memory")
    assert r.headers["Location"].endswith(f"{base}/before")
    assert snapshots_on_host(app, test_host, uuid) == ["before"]
    assert alice.get(r.headers["Location"]).json == r.json["snapshot"]
    listed = alice.get(base).json
    assert [s["name"] for s in listed["items"]] == ["before"] and listed["total"] == 1
    alice.post(f"/api/v1/vms/{vm['id']}/actions/poweroff")
    r = alice.post(f"{base}/before/revert")
    assert r.status_code == 200, r.json
    assert "box is back at snapshot before: running" in r.json["message"]
    assert r.json["vm"]["state"] == "running"
    assert domains_on(app, test_host)[row(app, vm["id"]).domain_name] == "running"
    r = alice.delete(f"{base}/before")
    assert r.status_code == 200 and r.json["message"] == "Snapshot before of box deleted."
    assert snapshots_on_host(app, test_host, uuid) == [] and alice.get(base).json["items"] == []
    problem(alice.get(f"{base}/before"), 404, "box has no snapshot named before")
    problem(alice.post(f"{base}/before/revert"), 404, "box has no snapshot named before")
    problem(alice.delete(f"{base}/before"), 404, "box has no snapshot named before")


def test_snapshot_refusals(app, alice, catalog, test_host):
    vm = new_vm(alice, catalog, start=True)
    base = f"/api/v1/vms/{vm['id']}/snapshots"
    problem(alice.post(base, json={"name": "bad name"}), 422, "Name the snapshot", "name")
    problem(alice.post(base, json={"name": ""}), 422, field="name")
    problem(alice.post(base, json={"name": "d", "memory": False}), 409,
            "disk-only snapshot is taken of a shut-off VM")
    assert alice.post(base, json={"name": "one", "memory": True}).status_code == 201
    problem(alice.post(base, json={"name": "one"}), 409, "box already has a snapshot named one.")
    assert snapshots_on_host(app, test_host, row(app, vm["id"]).uuid) == ["one"]


def test_the_saved_state_is_discarded(app, alice, catalog, test_host):
    vm = new_vm(alice, catalog, start=True)
    url = f"/api/v1/vms/{vm['id']}/saved-state/discard"
    problem(alice.post(url), 409, "box holds no saved state")
    assert alice.post(f"/api/v1/vms/{vm['id']}/actions/save").status_code == 200
    uuid = row(app, vm["id"]).uuid

    def saved(conn):
        return conn.lookupByUUIDString(uuid).hasManagedSaveImage(0) == 1
    assert host_call(app, test_host, saved)
    r = alice.post(url)
    assert r.status_code == 200, r.json
    assert r.json["message"] == "The saved state of box was discarded: its next start boots " \
        "afresh."
    assert not host_call(app, test_host, saved) and r.json["vm"]["state"] == "shut off"


# -- rebuild and clone --------------------------------------------------------------------------
def test_rebuild_keeps_the_vm_and_drops_its_snapshots(app, alice, catalog, test_host):
    vm = new_vm(alice, catalog, start=True)
    before = row(app, vm["id"])
    alice.post(f"/api/v1/vms/{vm['id']}/snapshots", json={"name": "a"})
    r = alice.post(f"/api/v1/vms/{vm['id']}/rebuild")
    assert r.status_code == 200, r.json
    assert r.json["message"] == "box was rebuilt from base and is starting: its disk is new."
    assert r.json["password"] is None   # a simulated host gets no first-boot data
    assert snapshots_on_host(app, test_host, before.uuid) == []
    after = row(app, vm["id"])
    assert (after.uuid, after.mac, after.name) == (before.uuid, before.mac, before.name)
    assert r.json["vm"]["state"] == "running"
    # an image without first-boot data takes no password
    problem(alice.post(f"/api/v1/vms/{vm['id']}/rebuild",
                       json={"password": "a fine password 9"}), 422,
            "takes no first-boot data", "password")


def test_clone_answers_202_with_its_task_and_the_task_makes_the_vm(app, alice, catalog,
                                                                   test_host):
    vm = new_vm(alice, catalog)
    r = alice.post(f"/api/v1/vms/{vm['id']}/clone", json={"name": "copy", "start": False})
    assert r.status_code == 202, r.json
    task_id = r.json["task_id"]
    assert r.headers["Location"].endswith(f"/api/v1/tasks/{task_id}")
    assert r.json["task_url"] == r.headers["Location"]
    assert r.json["message"].startswith("Cloning box as copy: task ")
    assert r.json["password"] is None
    assert row(app, r.json["vm_id"]).status == "creating"
    with app.app_context():
        task_service.execute(task_id)
        task = db.session.get(Task, task_id)
        assert task.state == "succeeded", task.error
    copy = alice.get(f"/api/v1/vms/{r.json['vm_id']}").json
    assert (copy["name"], copy["state"], copy["status"]) == ("copy", "shut off", "ready")
    assert domains_on(app, test_host)[row(app, r.json["vm_id"]).domain_name] == "shut off"


def test_clone_refusals_leave_nothing(app, alice, catalog, test_host):
    vm = new_vm(alice, catalog, start=True)
    url = f"/api/v1/vms/{vm['id']}/clone"
    before = sorted(domains_on(app, test_host)), sorted(volumes_in(app, test_host))
    problem(alice.post(url, json={"name": "copy"}), 409, "Shut box down first")
    alice.post(f"/api/v1/vms/{vm['id']}/actions/poweroff")
    problem(alice.post(url, json={"name": "box"}), 422, "You already have a VM named box",
            "name")
    problem(alice.post(url, json={}), 422, field="name")
    assert (sorted(domains_on(app, test_host)), sorted(volumes_in(app, test_host))) == before
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(Task.id))).scalar() == 0


# -- migration (the administrator's) --------------------------------------------------------------
def test_only_the_administrator_migrates(app, alice, root, catalog, tmp_path):
    vm = new_vm(alice, catalog)
    problem(alice.post(f"/api/v1/vms/{vm['id']}/migrate", json={}), 403,
            "Only the administrator")
    problem(alice.get(f"/api/v1/vms/{vm['id']}/migration-targets"), 403)
    problem(root.post(f"/api/v1/vms/{vm['id']}/migrate", json={"target_id": 999}), 422,
            field="target_id")
    problem(root.post(f"/api/v1/vms/{vm['id']}/migrate", json={"target_id": vm_host(app, vm)}),
            409, "already on h1")
    problem(root.post("/api/v1/vms/999/migrate", json={}), 404)


def vm_host(app, vm) -> int:
    return row(app, vm["id"]).host_id


def test_a_simulated_host_takes_no_migration_and_the_targets_say_why(app, alice, root,
                                                                     catalog, tmp_path):
    from loucloud.services import hosts as host_service
    uri2 = write_test_node(tmp_path / "h2.xml", pools=IMAGES, volumes=IMAGE_FILES)
    with app.app_context():
        h2 = host_service.add_host("h2", uri2).id
    vm = new_vm(alice, catalog)
    listed = root.get(f"/api/v1/vms/{vm['id']}/migration-targets").json
    assert [(t["host"], t["able"]) for t in listed["items"]] == [("h2", False)]
    assert "simulated host" in listed["items"][0]["reason"]
    problem(root.post(f"/api/v1/vms/{vm['id']}/migrate", json={"target_id": h2}), 409,
            "simulated host")
    problem(root.post(f"/api/v1/vms/{vm['id']}/migrate", json={"offline": True}), 409,
            "No host can take box")
    assert row(app, vm["id"]).status == "ready"
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(Task.id))).scalar() == 0


# -- install media, the guest password -----------------------------------------------------------
@pytest.fixture
def iso(app, catalog) -> int:
    """The installer ISO published as LouCloud's upload would leave it (on h1)."""
    with app.app_context():
        image = Image(name="Installer", path="/var/lib/images/installer.iso", format="iso",
                      virtual_size=1 << 20)
        image.locations.append(ImageLocation(host_id=1, present=True))
        db.session.add(image)
        db.session.commit()
        return image.id


def cdrom(app, uri, uuid) -> dict:
    return dict(xml.parse_domain(host_call(app, uri, lambda c: c.lookupByUUIDString(uuid)
                                           .XMLDesc(CONFIG))).cdroms)


def test_install_media_offered_and_the_test_driver_s_refusal(app, alice, catalog, test_host,
                                                             iso):
    """The test driver cannot change a drive's medium (virDomainUpdateDeviceFlags): the
    insert is the host's refusal and nothing changes (tests/system/test_install_media.py
    inserts and ejects for real)."""
    vm = new_vm(alice, catalog)
    url = f"/api/v1/vms/{vm['id']}/media"
    assert alice.get(url).json == {"inserted": None,
                                   "available": [{"id": iso, "name": "Installer"}]}
    problem(alice.post(url, json={"image_id": catalog}), 422, "Choose an ISO", "image_id")
    problem(alice.post(url, json={"image_id": "1"}), 422, field="image_id")
    problem(alice.delete(url), 409, "The CD-ROM drive of box is empty.")
    uuid = row(app, vm["id"]).uuid
    before = cdrom(app, test_host, uuid)
    problem(alice.post(url, json={"image_id": iso}), 409, "Cannot insert Installer")
    assert cdrom(app, test_host, uuid) == before
    assert row(app, vm["id"]).cdrom_image_id is None
    assert alice.get(url).json["inserted"] is None


def test_the_guest_password(app, alice, catalog):
    vm = new_vm(alice, catalog)
    url = f"/api/v1/vms/{vm['id']}/password"
    problem(alice.post(url, json={"user": "debian", "password": "a brand new password 7"}),
            409, "Start it first")
    alice.post(f"/api/v1/vms/{vm['id']}/actions/start")
    r = alice.post(url, json={"user": "debian", "password": "a brand new password 7"})
    assert r.status_code == 200 and r.json == \
        {"message": "The password of debian in box was changed."}
    assert "password 7" not in r.get_data(as_text=True).replace("password of", "")
    problem(alice.post(url, json={"user": "Not A User", "password": "a brand new password 7"}),
            422, "Use a Linux user name", "user")
    problem(alice.post(url, json={"user": "debian", "password": "short"}), 422,
            field="password")
    problem(alice.post(url, json={"user": "debian"}), 422, field="password")


# -- live status and metrics -------------------------------------------------------------------
def test_live_status_and_metrics(app, alice, catalog):
    vm = new_vm(alice, catalog, start=True)
    live = alice.get(f"/api/v1/vms/{vm['id']}/live").json
    assert (live["state"], live["domain_type"], live["firmware"]) == ("running", "test", "bios")
    assert live["disk"].endswith(f"{row(app, vm['id']).volume_name}")
    metrics = alice.get(f"/api/v1/vms/{vm['id']}/metrics").json
    assert (metrics["range"], metrics["t"], metrics["limits"]) == \
        ("hour", [], {"cpu_percent": 100, "memory_mib": 512})
    with app.app_context():
        sampler = sampler_service.Sampler()
        sampler.cycle()
        sampler.cycle()
    metrics = alice.get(f"/api/v1/vms/{vm['id']}/metrics").json
    assert len(metrics["t"]) == len(metrics["cpu_percent"]) == 2, metrics
    assert metrics["cpu_percent"][0] is None    # a rate needs two samples
    assert alice.get(f"/api/v1/vms/{vm['id']}/metrics?range=week").json["range"] == "week"
    problem(alice.get(f"/api/v1/vms/{vm['id']}/metrics?range=year"), 422, field="range")
    alice.post(f"/api/v1/vms/{vm['id']}/actions/poweroff")
    assert alice.get(f"/api/v1/vms/{vm['id']}/live").json["state"] == "shut off"


def test_the_host_not_answering_is_said_not_a_500(app, alice, catalog):
    vm = new_vm(alice, catalog)
    with app.app_context():
        db.session.get(VM, vm["id"]).host.uri = "qemu+unix:///system?socket=/nonexistent"
        db.session.commit()
    live = alice.get(f"/api/v1/vms/{vm['id']}/live")
    assert live.status_code == 200 and "does not answer" in live.json["error"]
    listed = alice.get(f"/api/v1/vms/{vm['id']}/disks")
    assert listed.status_code == 200 and listed.json["error"]
    assert listed.json["items"][0]["capacity_bytes"] is None
    problem(alice.get(f"/api/v1/vms/{vm['id']}/snapshots"), 503, "does not answer")
