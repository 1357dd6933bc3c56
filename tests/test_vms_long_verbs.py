"""The verbs that write or read a VM's whole memory (review finding 6): a snapshot with
memory, a revert, a snapshot's delete, Suspend to disk and the start that resumes it
wait for their host by the VM's memory as libvirt has it (its room to grow included),
not the 60 s of any other action, on libvirt's test driver. What a timeout of one of
them does (the VM in error, its outcome unknown, the host online while it answers) is
tested on real libvirtd and QEMU: tests/system/test_long_verbs.py, and the pool's part
in tests/test_virt_pool.py."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import libvirt
import pytest

from loucloud.extensions import db
from loucloud.models import VM
from loucloud.services import settings as settings_service
from loucloud.services.hypervisors import hypervisor
from tests.support.vms import (  # noqa: F401 (catalog: a fixture)
    catalog,
    create,
    host_call,
    vms,
)

JSON = {"Accept": "application/json"}
INACTIVE = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE


def _bound(app, vm, **kw) -> float:
    with app.app_context():
        row = db.session.get(VM, vm.id)
        return hypervisor(row.host).memory_bound(row.uuid, **kw)


@pytest.fixture
def box(app, as_user, catalog):
    """alice's running VM of 512 MiB: 2 GiB with its room to grow."""
    create(as_user, "box", catalog.id)
    return vms(app)[0]


def test_a_bigger_vm_waits_longer_than_the_action_bound(app, as_user, box):
    assert _bound(app, box) == 60 + 30 * 2            # the defaults: 60 s, 30 s per GiB
    response = as_user.post(f"/vms/{box.id}/resize", {"memory_mib": "4096"}, headers=JSON)
    assert response.status_code == 200, response.get_data(as_text=True)
    # its definition's room rose to 16 GiB; the running domain keeps its 2 GiB until
    # its next boot, and the bound is the running domain's
    assert _bound(app, box) == 60 + 30 * 2
    for action in ("poweroff", "start"):
        assert as_user.post(f"/vms/{box.id}/{action}").status_code == 302
    assert _bound(app, box) == 60 + 30 * 16           # 540 s, not 60


def test_the_bound_follows_the_settings_and_each_snapshot_counts(app, as_user, box):
    for name in ("a", "b", "c"):
        response = as_user.post(f"/vms/{box.id}/snapshots", {"name": name}, headers=JSON)
        assert response.status_code == 200, response.get_data(as_text=True)
    with app.app_context():
        settings_service.update_settings({"action_timeout": 20,
                                          "memory_timeout_per_gib": 5})
    assert _bound(app, box) == 20 + 5 * 2
    # a rebuild drops every snapshot at once: each walks the memory
    assert _bound(app, box, each_snapshot=True) == 20 + 3 * 5 * 2


def test_a_revert_waits_by_the_snapshots_memory_when_it_is_larger(app, as_user, catalog,
                                                                  test_host):
    """A snapshot taken with 16 GiB of room, the definition cut down to 1 GiB behind
    LouCloud's back: the revert reads the snapshot's 16 GiB back."""
    create(as_user, "box", catalog.id, start=False)
    [vm] = vms(app)
    assert as_user.post(f"/vms/{vm.id}/resize", {"memory_mib": "4096"},
                        headers=JSON).status_code == 200
    assert as_user.post(f"/vms/{vm.id}/snapshots", {"name": "big"},
                        headers=JSON).status_code == 200

    def cut_down(conn, uuid):
        root = ET.fromstring(conn.lookupByUUIDString(uuid).XMLDesc(INACTIVE))
        root.find("memory").text, root.find("memory").attrib = "1048576", {"unit": "KiB"}
        root.find("currentMemory").text = "524288"
        root.find("currentMemory").attrib = {"unit": "KiB"}
        conn.defineXML(ET.tostring(root, encoding="unicode"))
    host_call(app, test_host, cut_down, vm.uuid)
    assert _bound(app, vm) == 60 + 30 * 1
    with app.app_context():
        row = db.session.get(VM, vm.id)
        assert hypervisor(row.host).memory_bound(row.uuid, snapshot="big") == 60 + 30 * 16
