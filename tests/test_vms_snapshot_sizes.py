"""A revert puts back the vCPUs and memory the VM had at the snapshot (review finding 7),
on libvirt's test driver: the VM's row and the owner's quota follow what the host's
definition has after the revert; a revert whose sizes would put the owner over quota
is refused before anything changes; and a snapshot holding a data disk deleted since
is refused with its reason, the VM and its other snapshots going on as before."""
from __future__ import annotations

import libvirt
import pytest

from loucloud.extensions import db
from loucloud.models import VM, Snapshot, User
from loucloud.services import users as user_service
from loucloud.virt import xml
from tests.support.vms import (  # noqa: F401 (catalog: a fixture)
    act,
    catalog,
    create,
    host_call,
    state_of,
    vms,
)

JSON = {"Accept": "application/json"}
INACTIVE = libvirt.VIR_DOMAIN_XML_INACTIVE


def _post(client, vm_id, path, **form):
    return client.post(f"/vms/{vm_id}/{path}", form, headers=JSON)


def _defined(app, uri, uuid) -> tuple[int, int]:
    """(vCPUs, memory MiB) of the domain's definition on the host."""
    desc = xml.parse_domain(host_call(app, uri, lambda c: c.lookupByUUIDString(uuid)
                                      .XMLDesc(INACTIVE)))
    return desc.vcpus, desc.memory_mib


def _row(app, vm) -> tuple[int, int, str]:
    with app.app_context():
        row = db.session.get(VM, vm.id)
        return row.vcpus, row.memory_mib, row.status


def _used(app) -> tuple[int, int]:
    with app.app_context():
        used = user_service.quota_usage(db.session.execute(
            db.select(User).filter_by(username="alice")).scalar_one()).used
        return used.vcpus, used.memory_mib


def _resize(client, vm_id, **sizes):
    response = _post(client, vm_id, "resize", **sizes)
    assert response.status_code == 200, response.get_data(as_text=True)


@pytest.fixture
def big_then_small(app, as_user, catalog, test_host):
    """alice's shut-off VM "box": snapshot "big" taken at 8 vCPUs and 1024 MiB, then
    resized to 1 vCPU and 512 MiB (alice's quota: 8 vCPUs, 8192 MiB)."""
    create(as_user, "box", catalog.id, start=False)
    [vm] = vms(app)
    _resize(as_user, vm.id, vcpus="8", memory_mib="1024")
    assert _post(as_user, vm.id, "snapshots", name="big").status_code == 200
    _resize(as_user, vm.id, vcpus="1", memory_mib="512")
    assert _defined(app, test_host, vm.uuid) == (1, 512) and _used(app) == (1, 512)
    return vm


def test_a_revert_gives_the_row_and_the_quota_the_snapshots_sizes(app, as_user,
                                                                  big_then_small, test_host):
    vm = big_then_small
    response = _post(as_user, vm.id, "snapshots/revert", name="big")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["message"] == "box's disks are back at snapshot big; it is " \
        "shut off. It has 8 vCPUs and 1024 MiB of memory again, as at the snapshot (it " \
        "had 1 vCPU and 512 MiB of memory)."
    assert _defined(app, test_host, vm.uuid) == (8, 1024)
    assert _row(app, vm) == (8, 1024, "ready")
    assert _used(app) == (8, 1024)
    page = as_user.get(f"/vms/{vm.id}").get_data(as_text=True)
    assert "8 vCPU" in page and 'value="1024"' in page


def test_a_revert_past_the_quota_is_refused_and_changes_nothing(app, as_user,
                                                                big_then_small, test_host):
    """The vCPUs box gave back went to another VM: its snapshot's 8 no longer fit."""
    vm = big_then_small
    create(as_user, "other", vms(app)[0].template_id, start=False)
    other = next(v for v in vms(app) if v.name == "other")
    _resize(as_user, other.id, vcpus="7")
    assert _used(app) == (8, 1024)
    response = _post(as_user, vm.id, "snapshots/revert", name="big")
    assert response.status_code == 409, response.get_data(as_text=True)
    assert response.get_json()["error"] == "Cannot revert box to snapshot big: it puts " \
        "back 8 vCPUs and 1024 MiB of memory (box has 1 vCPU and 512 MiB of memory now). " \
        "Over quota: vCPUs 8 in use + 7 would exceed 8."
    assert _defined(app, test_host, vm.uuid) == (1, 512)
    assert _row(app, vm) == (1, 512, "ready")
    assert _used(app) == (8, 1024)
    result = app.test_cli_runner().invoke(args=["vms", "revert", "box", "big", "--owner",
                                                "alice"])
    assert result.exit_code == 1 and "Cannot revert box to snapshot big" in result.output
    # once the other VM is gone, the same revert goes through
    assert as_user.post(f"/vms/{other.id}/delete").status_code == 302
    assert _post(as_user, vm.id, "snapshots/revert", name="big").status_code == 200
    assert _row(app, vm) == (8, 1024, "ready") and _used(app) == (8, 1024)


def test_a_revert_to_smaller_sizes_gives_the_quota_back(app, as_user, catalog, test_host):
    """A running VM's memory snapshot at 1 vCPU and 512 MiB, then resized up while it
    runs: the revert brings the running machine and the definition of then back."""
    create(as_user, "box", catalog.id)
    [vm] = vms(app)
    assert _post(as_user, vm.id, "snapshots", name="small").status_code == 200
    _resize(as_user, vm.id, vcpus="3", memory_mib="1024")
    assert _used(app) == (3, 1024)
    response = _post(as_user, vm.id, "snapshots/revert", name="small")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["message"] == "box is back at snapshot small: running, as " \
        "it was then. It has 1 vCPU and 512 MiB of memory again, as at the snapshot (it " \
        "had 3 vCPUs and 1024 MiB of memory)."
    assert state_of(as_user, vm.id) == "running"
    assert _defined(app, test_host, vm.uuid) == (1, 512)
    assert _row(app, vm) == (1, 512, "ready") and _used(app) == (1, 512)


def test_a_revert_to_the_same_sizes_says_nothing_of_them(app, as_user, catalog, test_host):
    create(as_user, "box", catalog.id, start=False)
    [vm] = vms(app)
    _post(as_user, vm.id, "snapshots", name="same")
    response = _post(as_user, vm.id, "snapshots/revert", name="same")
    assert response.get_json()["message"] == \
        "box's disks are back at snapshot same; it is shut off."
    assert _row(app, vm) == (1, 512, "ready") and _used(app) == (1, 512)


def test_a_snapshot_holding_a_deleted_disk_is_refused_and_the_vm_goes_on(app, as_user,
                                                                         catalog, test_host):
    """Deleting a data disk a snapshot holds is allowed (the disk is the owner's); the
    revert to that snapshot is then refused with the reason, through the page and the
    command line, and nothing breaks: the VM starts, the snapshot can be deleted, and a
    snapshot taken after the delete reverts."""
    create(as_user, "box", catalog.id, start=False)
    [vm] = vms(app)
    assert _post(as_user, vm.id, "disks", size_gib="1").status_code == 200
    assert _post(as_user, vm.id, "snapshots", name="with-vdb").status_code == 200
    deleted = _post(as_user, vm.id, "disks/delete", disk="vdb")
    assert deleted.status_code == 200, deleted.get_data(as_text=True)
    assert _post(as_user, vm.id, "snapshots", name="after").status_code == 200
    refusal = "Cannot revert box: snapshot with-vdb holds the disk vdb, deleted since: " \
              "it cannot come back (delete the snapshot)."
    response = _post(as_user, vm.id, "snapshots/revert", name="with-vdb")
    assert response.status_code == 409 and response.get_json()["error"] == refusal
    result = app.test_cli_runner().invoke(args=["vms", "revert", "box", "with-vdb",
                                                "--owner", "alice"])
    assert result.exit_code == 1 and refusal in result.output
    assert _row(app, vm) == (1, 512, "ready") and _used(app) == (1, 512)
    assert act(as_user, vm.id, "start", json_=True).status_code == 200
    assert state_of(as_user, vm.id) == "running"
    assert act(as_user, vm.id, "poweroff", json_=True).status_code == 200
    reverted = _post(as_user, vm.id, "snapshots/revert", name="after")
    assert reverted.status_code == 200, reverted.get_data(as_text=True)
    assert _post(as_user, vm.id, "snapshots/delete", name="with-vdb").status_code == 200
    with app.app_context():
        assert [s.name for s in db.session.execute(db.select(Snapshot)).scalars()] == \
            ["after"]
