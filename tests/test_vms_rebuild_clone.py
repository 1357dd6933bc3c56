"""Rebuild and clone on libvirt's test driver (issue 14): what stays (name, domain, MAC,
owner), what goes (snapshots), the clone's own identity within the quota, and the
refusals (a running source, a name taken, over quota) that leave nothing behind."""
from __future__ import annotations

import pytest

from loucloud.extensions import db
from loucloud.models import VM, Disk, Snapshot, Task, User
from loucloud.services import tasklist
from loucloud.services import tasks as task_service
from loucloud.services.users import quota_usage
from tests.support.vms import (  # noqa: F401 (catalog: a fixture)
    act,
    catalog,
    create,
    domains_on,
    host_call,
    state_of,
    vms,
    volumes_in,
)


def _post(client, vm_id, path, **form):
    return client.post(f"/vms/{vm_id}/{path}", form, headers={"Accept": "application/json"})


@pytest.fixture
def source(app, as_user, catalog, test_host):
    assert create(as_user, "orig", catalog.id).status_code == 302
    [vm] = vms(app)
    return vm


def run_clone_task(app) -> Task:
    """Run the clone's task as the worker would (the tests' queue runs nothing itself)."""
    with app.app_context():
        task = db.session.execute(db.select(Task).where(Task.kind == "vm.clone")
                                  .order_by(Task.id.desc())).scalars().first()
        task_service.execute(task.id)
        db.session.refresh(task)
        db.session.expunge(task)
        return task


def _snapshot_count(app) -> int:
    with app.app_context():
        return db.session.execute(db.select(db.func.count(Snapshot.id))).scalar()


def test_rebuild_keeps_the_identity_and_drops_the_snapshots(app, as_user, source, test_host):
    _post(as_user, source.id, "snapshots", name="a")
    act(as_user, source.id, "poweroff")
    _post(as_user, source.id, "snapshots", name="b")
    act(as_user, source.id, "start")
    response = _post(as_user, source.id, "rebuild")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["message"] == \
        "orig was rebuilt from base and is starting: its disk is new."
    [after] = vms(app)
    assert (after.uuid, after.domain_name, after.mac, after.ip_address, after.owner_id,
            after.name) == (source.uuid, source.domain_name, source.mac, source.ip_address,
                            source.owner_id, source.name)
    assert _snapshot_count(app) == 0

    def snaps(conn):
        return conn.lookupByUUIDString(source.uuid).listAllSnapshots(0)
    assert host_call(app, test_host, snaps) == []
    assert source.volume_name in volumes_in(app, test_host)
    assert state_of(as_user, source.id) == "running"
    assert after.status == VM.READY and after.last_error is None


def test_rebuild_of_a_shut_off_vm_leaves_it_shut_off(app, as_user, source):
    act(as_user, source.id, "poweroff")
    response = _post(as_user, source.id, "rebuild")
    assert response.get_json()["message"] == "orig was rebuilt from base: its disk is new."
    assert state_of(as_user, source.id) == "shut off"


def test_rebuild_refuses_a_password_for_an_image_without_first_boot_data(app, as_user,
                                                                         source):
    response = _post(as_user, source.id, "rebuild", password="a fine password 9")
    assert response.status_code == 400
    assert "takes no first-boot data" in response.get_json()["error"]


def test_clone_of_a_shut_off_vm(app, as_user, source, test_host):
    act(as_user, source.id, "poweroff")
    response = _post(as_user, source.id, "clone", name="copy", start="y")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["message"].startswith("Cloning orig as copy: task ")
    assert [(v.name, v.status) for v in vms(app)] == [("orig", "cloning"),
                                                      ("copy", "creating")]
    page = as_user.get(f"/vms/{source.id}").get_data(as_text=True)
    assert "data-task=" in page and "Waiting for the worker." in page
    task = run_clone_task(app)
    assert task.state == "succeeded", task.error
    with app.app_context():
        assert tasklist.says(task.result).startswith("orig was cloned as copy on h1 (")
    orig, copy = vms(app)
    assert (copy.owner_id, copy.host_id, copy.template_id, copy.image_id) == \
        (orig.owner_id, orig.host_id, orig.template_id, orig.image_id)
    assert (copy.vcpus, copy.memory_mib, copy.disk_gib) == \
        (orig.vcpus, orig.memory_mib, orig.disk_gib)
    assert copy.uuid != orig.uuid and copy.mac and copy.mac != orig.mac
    assert copy.volume_name == f"lc-{copy.uuid}.qcow2"
    assert set(domains_on(app, test_host)) >= {orig.domain_name, copy.domain_name}
    assert domains_on(app, test_host)[copy.domain_name] == "running"
    assert domains_on(app, test_host)[orig.domain_name] == "shut off"
    assert copy.volume_name in volumes_in(app, test_host)
    with app.app_context():
        [disk] = db.session.execute(db.select(Disk).where(Disk.vm_id == copy.id)).scalars()
        assert (disk.system, disk.volume_name, disk.size_gib) == \
            (True, copy.volume_name, orig.disk_gib)
        usage = quota_usage(db.session.get(User, orig.owner_id))
        assert (usage.used.vms, usage.used.disk_gib) == (2, 2 * orig.disk_gib)
    assert state_of(as_user, orig.id) == "shut off"
    assert orig.status == VM.READY


def _world(app, uri):
    return sorted(domains_on(app, uri)), sorted(volumes_in(app, uri)), \
        [(v.name, v.status) for v in vms(app)]


def test_clone_of_a_running_vm_is_refused(app, as_user, source, test_host):
    before = _world(app, test_host)
    response = _post(as_user, source.id, "clone", name="copy")
    assert response.status_code == 409
    assert response.get_json()["error"] == \
        "Shut orig down first: its disk is copied while it is shut off (it is running)."
    assert _world(app, test_host) == before


@pytest.mark.parametrize("name,status,error", [
    ("orig", 400, "You already have a VM named orig."),
    ("bad name", 400, "Use 1 to 64 letters"),
    ("", 400, "Use 1 to 64 letters"),
])
def test_clone_names_refused(app, as_user, source, test_host, name, status, error):
    act(as_user, source.id, "poweroff")
    before = _world(app, test_host)
    response = _post(as_user, source.id, "clone", name=name)
    assert response.status_code == status
    assert error in response.get_json()["error"]
    assert _world(app, test_host) == before


def test_clone_over_quota_is_refused_and_leaves_nothing(app, as_user, source, test_host):
    act(as_user, source.id, "poweroff")
    with app.app_context():
        db.session.get(User, source.owner_id).max_vcpus = source.vcpus
        db.session.commit()
    before = _world(app, test_host)
    response = _post(as_user, source.id, "clone", name="copy")
    assert response.status_code == 409
    assert "Over quota: vCPUs 1 in use + 1 would exceed 1." in response.get_json()["error"]
    assert _world(app, test_host) == before


def test_clone_of_a_vm_with_a_saved_state_is_refused(app, as_user, source, test_host):
    act(as_user, source.id, "save")
    before = _world(app, test_host)
    response = _post(as_user, source.id, "clone", name="copy")
    assert response.status_code == 409
    assert "holds a saved memory state" in response.get_json()["error"]
    assert _world(app, test_host) == before


def test_rebuild_and_clone_commands(app, user, catalog, test_host):
    runner = app.test_cli_runner()

    def run(*args):
        return runner.invoke(args=["vms", *args, "--owner", "alice"])
    assert run("create", "cli-vm", "--template", "small").exit_code == 0
    refused = run("clone", "cli-vm", "cli-copy")
    assert refused.exit_code == 1 and "Shut cli-vm down first" in refused.output
    assert run("poweroff", "cli-vm").exit_code == 0
    cloned = run("clone", "cli-vm", "cli-copy", "--no-start", "--no-wait")
    assert cloned.exit_code == 0, cloned.output
    assert "cloning cli-vm as cli-copy" in cloned.output
    result = run_clone_task(app).result
    with app.app_context():
        assert "cli-vm was cloned as cli-copy on h1" in tasklist.says(result)
    assert sorted(v.name for v in vms(app)) == ["cli-copy", "cli-vm"]
    assert domains_on(app, test_host)[vms(app)[1].domain_name] == "shut off"
    rebuilt = run("rebuild", "cli-copy")
    assert rebuilt.exit_code == 0 and "cli-copy was rebuilt from base" in rebuilt.output
    missing = run("rebuild", "nothing")
    assert missing.exit_code == 1 and "alice has no VM named nothing" in missing.output
