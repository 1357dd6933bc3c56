"""A VM holding a saved memory state (suspended to disk) on libvirt's test driver:
its start restores the definition saved with it, so resizing it or changing its disks
is refused with the reason (nothing changed: definition, rows, quota); and a rebuild
leaves no false "saved state" behind."""
from __future__ import annotations

import libvirt
import pytest

from loucloud.extensions import db
from loucloud.models import VM, Disk, User
from loucloud.services import users as user_service
from loucloud.virt import xml
from tests.support.vms import (  # noqa: F401 (catalog: a fixture)
    act,
    catalog,
    create,
    host_call,
    vms,
    volumes_in,
)

JSON = {"Accept": "application/json"}
SAVED = "it holds a saved memory state (suspended to disk): start it, or discard the " \
        "state, first."


def _definition(app, uri, uuid):
    return xml.parse_domain(host_call(app, uri, lambda c: c.lookupByUUIDString(uuid)
                                      .XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)))


def _world(app, uri, vm):
    """The definition's sizes and disks, the rows, the quota and the pool's volumes."""
    text = host_call(app, uri, lambda c: c.lookupByUUIDString(vm.uuid)
                     .XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    desc = xml.parse_domain(text)
    with app.app_context():
        rows = [(d.target, d.size_gib, d.attached) for d in db.session.execute(
            db.select(Disk).order_by(Disk.target)).scalars()]
        used = user_service.quota_usage(db.session.execute(
            db.select(User).filter_by(username="alice")).scalar_one()).used
        row = db.session.get(VM, vm.id)
        sizes = (row.vcpus, row.memory_mib, row.status)
    return ((desc.vcpus, desc.memory_mib), xml.parse_disks(text), rows,
            (used.vcpus, used.memory_mib, used.disk_gib), sizes, sorted(volumes_in(app, uri)))


@pytest.fixture
def suspended(app, as_user, catalog, test_host):
    """alice's VM "box" with a data disk vdb, started and suspended to disk."""
    create(as_user, "box", catalog.id, start=False)
    [vm] = vms(app)
    added = as_user.post(f"/vms/{vm.id}/disks", {"size_gib": "1"}, headers=JSON)
    assert added.status_code == 200, added.get_data(as_text=True)
    assert act(as_user, vm.id, "start").status_code == 302
    assert act(as_user, vm.id, "save").status_code == 302
    assert host_call(app, test_host,
                     lambda c: c.lookupByUUIDString(vm.uuid).hasManagedSaveImage(0)) == 1
    return vm


@pytest.mark.parametrize("path, form, doing", [
    ("resize", {"vcpus": "2", "memory_mib": "1024"}, "resize"),
    ("disks", {"size_gib": "1"}, "add a disk to"),
    ("disks/detach", {"disk": "vdb"}, "detach a disk of"),
    ("disks/delete", {"disk": "vdb"}, "delete a disk of"),
    ("disks/grow", {"disk": "vdb", "size_gib": "3"}, "grow a disk of"),
])
def test_a_suspended_vm_refuses_resize_and_disk_changes(app, as_user, suspended, test_host,
                                                        path, form, doing):
    before = _world(app, test_host, suspended)
    response = as_user.post(f"/vms/{suspended.id}/{path}", form, headers=JSON)
    assert response.status_code == 409, response.get_data(as_text=True)
    assert response.get_json()["error"] == f"Cannot {doing} box: {SAVED}"
    assert _world(app, test_host, suspended) == before


def test_the_command_line_says_why(app, suspended):
    result = app.test_cli_runner().invoke(args=["vms", "resize", "box", "--owner", "alice",
                                                "--vcpus", "2"])
    assert result.exit_code == 1
    assert f"Cannot resize box: {SAVED}" in result.output


def test_after_the_discard_the_resize_goes_through(app, as_user, suspended, test_host):
    assert as_user.post(f"/vms/{suspended.id}/discard-saved", headers=JSON).status_code == 200
    response = as_user.post(f"/vms/{suspended.id}/resize", {"vcpus": "2"}, headers=JSON)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert _definition(app, test_host, suspended.uuid).vcpus == 2


def test_a_rebuilt_suspended_vm_shows_no_saved_state(app, as_user, suspended, test_host):
    """Shut off before and after, the rebuild discards the saved state: the store, the
    list's badge and the page's discard button must say so too."""
    assert "saved state</span>" in as_user.get("/").get_data(as_text=True)
    response = as_user.post(f"/vms/{suspended.id}/rebuild", headers=JSON)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert host_call(app, test_host, lambda c: c.lookupByUUIDString(suspended.uuid)
                     .hasManagedSaveImage(0)) == 0
    with app.app_context():
        row = db.session.get(VM, suspended.id)
        assert (row.live_state, row.live_reason) == ("shut off", "")
    assert "saved state</span>" not in as_user.get("/").get_data(as_text=True)
    assert 'id="vm-saved-state"' not in \
        as_user.get(f"/vms/{suspended.id}").get_data(as_text=True)
