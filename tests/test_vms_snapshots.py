"""Snapshots and suspend to disk on libvirt's test driver (issue 14): through the page,
the command line and the services; the refusals (a name twice, over the limit, unknown,
a state that does not fit, another user's VM) say why and change nothing."""
from __future__ import annotations

import json

import pytest

from loucloud.extensions import db
from loucloud.models import VM, Snapshot
from loucloud.services import settings as settings_service
from tests.support.vms import (  # noqa: F401 (catalog: a fixture)
    act,
    catalog,
    create,
    host_call,
    state_of,
    vms,
)


def _snapshots_on_host(app, vm) -> list[str]:
    def names(conn):
        dom = conn.lookupByUUIDString(vm.uuid)
        return sorted(s.getName() for s in dom.listAllSnapshots(0))
    return host_call(app, _uri(app, vm), names)


def _uri(app, vm) -> str:
    with app.app_context():
        return db.session.get(VM, vm.id).host.uri


def _rows(app, vm) -> list[tuple[str, bool]]:
    with app.app_context():
        return [(s.name, s.memory) for s in db.session.execute(
            db.select(Snapshot).where(Snapshot.vm_id == vm.id).order_by(Snapshot.id)).scalars()]


def _post(client, vm, path, json_=True, **form):
    headers = {"Accept": "application/json"} if json_ else {}
    return client.post(f"/vms/{vm.id}/{path}", form, headers=headers)


@pytest.fixture
def running(app, as_user, catalog):
    assert create(as_user, "snappy", catalog.id).status_code == 302
    [vm] = vms(app)
    return vm


def test_take_list_revert_and_delete_a_memory_snapshot_through_the_page(app, as_user, running):
    vm = running
    response = _post(as_user, vm, "snapshots", name="before", mode="auto")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "with its running machine" in response.get_json()["message"]
    assert _rows(app, vm) == [("before", True)]
    assert _snapshots_on_host(app, vm) == ["before"]
    page = as_user.get(f"/vms/{vm.id}").get_data(as_text=True)
    assert 'data-snapshot="before"' in page and "memory and disks" in page
    response = _post(as_user, vm, "snapshots/revert", name="before")
    assert response.status_code == 200
    assert "back at snapshot before: running" in response.get_json()["message"]
    assert state_of(as_user, vm.id) == "running"
    response = _post(as_user, vm, "snapshots/delete", name="before")
    assert response.get_json()["message"] == "Snapshot before of snappy deleted."
    assert _rows(app, vm) == [] and _snapshots_on_host(app, vm) == []
    assert 'data-snapshot="before"' not in as_user.get(f"/vms/{vm.id}").get_data(as_text=True)


def test_a_shut_off_vm_gets_disk_only_snapshots_and_stays_off_on_revert(app, as_user, running):
    vm = running
    act(as_user, vm.id, "poweroff")
    refused = _post(as_user, vm, "snapshots", name="m", mode="memory")
    assert refused.status_code == 409
    assert "no running machine to save" in refused.get_json()["error"]
    ok = _post(as_user, vm, "snapshots", name="disks", mode="auto")
    assert ok.get_json()["message"] == "Snapshot disks of snappy's disks taken."
    assert _rows(app, vm) == [("disks", False)]
    reverted = _post(as_user, vm, "snapshots/revert", name="disks")
    assert "disks are back at snapshot disks; it is shut off" in reverted.get_json()["message"]
    assert state_of(as_user, vm.id) == "shut off"


def test_reverting_a_running_vm_to_a_disk_only_snapshot_boots_it_again(app, as_user, running):
    vm = running
    act(as_user, vm.id, "poweroff")
    _post(as_user, vm, "snapshots", name="disks")
    act(as_user, vm.id, "start")
    reverted = _post(as_user, vm, "snapshots/revert", name="disks")
    assert "forced off and boots from them" in reverted.get_json()["message"]
    assert state_of(as_user, vm.id) == "running"


def test_a_disk_only_snapshot_of_a_running_vm_is_refused(app, as_user, running):
    refused = _post(as_user, running, "snapshots", name="d", mode="disk")
    assert refused.status_code == 409
    assert "disk-only snapshot is taken of a shut-off VM" in refused.get_json()["error"]
    assert _rows(app, running) == [] and _snapshots_on_host(app, running) == []


def test_the_same_name_twice_and_over_the_limit_are_refused_with_409(app, as_user, running):
    vm = running
    with app.app_context():
        settings_service.update_settings({"snapshots_per_vm": 2})
    assert _post(as_user, vm, "snapshots", name="one").status_code == 200
    twice = _post(as_user, vm, "snapshots", name="one")
    assert twice.status_code == 409
    assert twice.get_json()["error"] == "snappy already has a snapshot named one."
    assert _post(as_user, vm, "snapshots", name="two").status_code == 200
    over = _post(as_user, vm, "snapshots", name="three")
    assert over.status_code == 409
    assert "has 2 snapshots, the most a VM may keep (2)" in over.get_json()["error"]
    assert _snapshots_on_host(app, vm) == ["one", "two"]
    with app.app_context():
        settings_service.update_settings({"snapshots_per_vm": 0})
    off = _post(as_user, vm, "snapshots", name="x")
    assert off.status_code == 409 and "turned off" in off.get_json()["error"]


@pytest.mark.parametrize("name", ["", " ", "-dash", "a/b", "x" * 65, "<b>", "ünï"])
def test_bad_snapshot_names_are_400(app, as_user, running, name):
    response = _post(as_user, running, "snapshots", name=name)
    assert response.status_code == 400
    assert "Name the snapshot" in response.get_json()["error"]
    assert _snapshots_on_host(app, running) == []


def test_unknown_snapshots_are_404(app, as_user, running):
    for path in ("snapshots/revert", "snapshots/delete"):
        response = _post(as_user, running, path, name="nope")
        assert response.status_code == 404
        assert response.get_json()["error"] == "snappy has no snapshot named nope."
    assert state_of(as_user, running.id) == "running"


def test_another_users_vm_is_404_and_unchanged(app, as_user, running, other_user):
    from tests.conftest import Client
    bob = Client(app)
    bob.login("bob")
    _post(as_user, running, "snapshots", name="mine")
    for path, form in (("snapshots", {"name": "x"}), ("snapshots/revert", {"name": "mine"}),
                       ("snapshots/delete", {"name": "mine"}), ("discard-saved", {}),
                       ("rebuild", {}), ("clone", {"name": "stolen"}), ("save", {})):
        assert _post(bob, running, path, **form).status_code == 404, path
    assert _rows(app, running) == [("mine", True)]
    assert len(vms(app)) == 1 and state_of(as_user, running.id) == "running"


def test_the_host_is_the_truth_of_the_list(app, as_user, running):
    """A snapshot made outside LouCloud is listed; one deleted outside is dropped."""
    vm = running
    _post(as_user, vm, "snapshots", name="ours")

    def behind_our_back(conn):
        dom = conn.lookupByUUIDString(vm.uuid)
        dom.snapshotLookupByName("ours", 0).delete(0)
        dom.snapshotCreateXML("<domainsnapshot><name>theirs</name></domainsnapshot>", 0)
    host_call(app, _uri(app, vm), behind_our_back)
    result = app.test_cli_runner().invoke(args=["vms", "snapshots", "snappy", "--owner",
                                                "alice", "--json"])
    assert result.exit_code == 0, result.output
    assert [r["name"] for r in json.loads(result.output)] == ["theirs"]
    assert _rows(app, vm) == [("theirs", True)]


def test_snapshot_commands(app, user, catalog):
    runner = app.test_cli_runner()

    def run(*args):
        return runner.invoke(args=["vms", *args, "--owner", "alice"])
    assert run("create", "cli-vm", "--template", "small").exit_code == 0
    taken = run("snapshot", "cli-vm", "s1", "--memory")
    assert taken.exit_code == 0 and "with its running machine" in taken.output
    again = run("snapshot", "cli-vm", "s1")
    assert again.exit_code == 1 and "already has a snapshot named s1" in again.output
    disk = run("snapshot", "cli-vm", "s2", "--disk-only")
    assert disk.exit_code == 1 and "shut-off VM" in disk.output
    listed = run("snapshots", "cli-vm")
    assert "s1" in listed.output and "memory" in listed.output
    assert "back at snapshot s1" in run("revert", "cli-vm", "s1").output
    unknown = run("revert", "cli-vm", "nope")
    assert unknown.exit_code == 1 and "no snapshot named nope" in unknown.output
    assert run("snapshot-delete", "cli-vm", "s1").exit_code == 0
    assert "s1" not in run("snapshots", "cli-vm").output


# -- suspend to disk ---------------------------------------------------------------------
def test_suspend_to_disk_resume_and_discard(app, as_user, running):
    vm = running
    response = act(as_user, vm.id, "save", json_=True)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "memory was saved to disk" in response.get_json()["message"]
    assert state_of(as_user, vm.id) == "shut off"
    assert "saved state" in as_user.get("/").get_data(as_text=True)
    page = as_user.get(f"/vms/{vm.id}").get_data(as_text=True)
    assert 'id="vm-saved-state"' in page

    def saved(conn):
        return conn.lookupByUUIDString(vm.uuid).hasManagedSaveImage(0)
    uri = _uri(app, vm)
    assert host_call(app, uri, saved) == 1
    refused = _post(as_user, vm, "snapshots", name="x")
    assert refused.status_code == 409 and "saved memory state" in refused.get_json()["error"]
    act(as_user, vm.id, "start")   # resumes from the saved state
    assert state_of(as_user, vm.id) == "running" and host_call(app, uri, saved) == 0
    assert 'id="vm-saved-state"' not in as_user.get(f"/vms/{vm.id}").get_data(as_text=True)
    act(as_user, vm.id, "save")
    discarded = _post(as_user, vm, "discard-saved")
    assert "next start boots afresh" in discarded.get_json()["message"]
    assert host_call(app, uri, saved) == 0
    assert 'id="vm-saved-state"' not in as_user.get(f"/vms/{vm.id}").get_data(as_text=True)
    again = _post(as_user, vm, "discard-saved")
    assert again.status_code == 409 and "holds no saved state" in again.get_json()["error"]


def test_suspend_to_disk_of_a_shut_off_vm_is_refused(app, as_user, running):
    act(as_user, running.id, "poweroff")
    refused = act(as_user, running.id, "save", json_=True)
    assert refused.status_code == 409
    assert "the VM is shut off" in refused.get_json()["error"]


def test_deleting_a_vm_deletes_its_snapshots(app, as_user, running):
    uri = _uri(app, running)
    _post(as_user, running, "snapshots", name="a")
    act(as_user, running.id, "poweroff")
    _post(as_user, running, "snapshots", name="b")
    assert as_user.post(f"/vms/{running.id}/delete").status_code == 302
    assert vms(app) == []
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(Snapshot.id))).scalar() == 0

    def domains(conn):
        return [d.UUIDString() for d in conn.listAllDomains(0)]
    assert running.uuid not in host_call(app, uri, domains)


# -- a revert keeps the data disks as they are now -----------------------------------
def _disks_defined(app, vm, flags=1) -> list[str]:   # 1: VIR_DOMAIN_XML_INACTIVE
    from loucloud.virt import xml
    return [d.target for d in xml.parse_disks(host_call(
        app, _uri(app, vm), lambda c: c.lookupByUUIDString(vm.uuid).XMLDesc(flags)))]


def _disk_rows(app, vm) -> list[tuple[str, bool]]:
    with app.app_context():
        return [(d.target, d.attached) for d in db.session.get(VM, vm.id).disks]


def test_a_disk_attached_after_the_snapshot_stays_attached(app, as_user, running):
    vm = running
    act(as_user, vm.id, "poweroff")
    _post(as_user, vm, "snapshots", name="bare", mode="auto")
    assert _post(as_user, vm, "disks", size_gib="1").status_code == 200
    assert _disks_defined(app, vm) == ["vda", "vdb"]
    response = _post(as_user, vm, "snapshots/revert", name="bare")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["message"] == "snappy's disks are back at snapshot bare; " \
        "it is shut off. Its data disk vdb (attached after the snapshot) stays attached, " \
        "as it is now."
    assert _disks_defined(app, vm) == ["vda", "vdb"]
    assert _disk_rows(app, vm) == [("vda", True), ("vdb", True)]


def test_a_disk_detached_after_the_snapshot_stays_detached(app, as_user, running):
    vm = running
    act(as_user, vm.id, "poweroff")
    _post(as_user, vm, "disks", size_gib="1")
    _post(as_user, vm, "snapshots", name="with-vdb", mode="auto")
    _post(as_user, vm, "disks/detach", disk="vdb")
    response = _post(as_user, vm, "snapshots/revert", name="with-vdb")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "Its data disk vdb (detached after the snapshot) stays detached; what it holds " \
        "went back to the snapshot too." in response.get_json()["message"]
    assert _disks_defined(app, vm) == ["vda"]
    assert _disk_rows(app, vm) == [("vda", True), ("vdb", False)]


def test_a_running_vm_reverted_to_a_disk_only_snapshot_boots_with_its_disks_of_now(
        app, as_user, running):
    vm = running
    act(as_user, vm.id, "poweroff")
    _post(as_user, vm, "snapshots", name="bare", mode="auto")
    _post(as_user, vm, "disks", size_gib="1")
    act(as_user, vm.id, "start")
    response = _post(as_user, vm, "snapshots/revert", name="bare")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "forced off and boots from them. Its data disk vdb (attached after the " \
        "snapshot) stays attached" in response.get_json()["message"]
    assert state_of(as_user, vm.id) == "running"
    assert _disks_defined(app, vm, 0) == ["vda", "vdb"]   # the running domain has it
    assert _disks_defined(app, vm) == ["vda", "vdb"]


def test_a_memory_revert_puts_a_disk_the_vm_cannot_plug_in_now_into_its_definition(
        app, as_user, running):
    """A memory snapshot of the running VM, then a disk added while it was off and the
    VM started again: the revert restores the running machine of the snapshot (without
    vdb: a new QEMU process, REVERT_FORCE), and vdb is plugged in again; the test
    driver cannot hot-plug, so it goes into the definition and the answer says so."""
    vm = running
    _post(as_user, vm, "snapshots", name="live", mode="auto")
    act(as_user, vm.id, "poweroff")
    _post(as_user, vm, "disks", size_gib="1")
    act(as_user, vm.id, "start")
    response = _post(as_user, vm, "snapshots/revert", name="live")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["message"] == "snappy is back at snapshot live: running, as " \
        "it was then. Its data disk vdb is back in its definition but the running VM " \
        "refused the hot-plug: the VM sees it at its next start."
    assert _disks_defined(app, vm, 0) == ["vda"]
    assert _disk_rows(app, vm) == [("vda", True), ("vdb", True)]
    act(as_user, vm.id, "poweroff")     # its next start has vdb
    assert _disks_defined(app, vm) == ["vda", "vdb"]


def test_a_snapshot_holding_a_disk_deleted_since_is_not_reverted(app, as_user, running):
    vm = running
    act(as_user, vm.id, "poweroff")
    _post(as_user, vm, "disks", size_gib="1")
    _post(as_user, vm, "snapshots", name="with-vdb", mode="auto")
    assert _post(as_user, vm, "disks/delete", disk="vdb").status_code == 200
    response = _post(as_user, vm, "snapshots/revert", name="with-vdb")
    assert response.status_code == 409
    assert response.get_json()["error"] == "Cannot revert snappy: snapshot with-vdb holds " \
        "the disk vdb, deleted since: it cannot come back (delete the snapshot)."
    assert _disks_defined(app, vm) == ["vda"] and _disk_rows(app, vm) == [("vda", True)]
    with app.app_context():
        assert db.session.get(VM, vm.id).status == "ready"
