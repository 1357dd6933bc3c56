"""A resize the host refuses part-way, on libvirt's test driver (issue 14, review
finding 12): the definition takes vCPUs, then memory, one change at a time; when a
later step is refused, LouCloud's row (and so the quota) records what the definition
says, and the answer says what applied. The refusal here is a real one: the host will
not change the maximum memory of a domain with NUMA cells (set behind LouCloud's back)."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import libvirt

from loucloud.extensions import db
from loucloud.models import VM, User
from loucloud.services import users as user_service
from loucloud.virt import xml
from tests.support.vms import (  # noqa: F401 (catalog: a fixture)
    catalog,
    create,
    host_call,
    vms,
)

INACTIVE = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE


def _with_numa(conn, uuid):
    """Redefine the domain with one NUMA cell (what an administrator might do)."""
    root = ET.fromstring(conn.lookupByUUIDString(uuid).XMLDesc(INACTIVE))
    cpu = root.find("cpu")
    if cpu is None:
        cpu = ET.SubElement(root, "cpu")
    numa = ET.SubElement(cpu, "numa")
    memory = root.find("memory")
    ET.SubElement(numa, "cell", id="0", cpus="0-3", memory=memory.text,
                  unit=memory.get("unit", "KiB"))
    conn.defineXML(ET.tostring(root, encoding="unicode"))


def test_a_resize_refused_part_way_records_what_the_definition_says(app, as_user, catalog,
                                                                   test_host):
    create(as_user, "box", catalog.id, start=False)
    [vm] = vms(app)
    host_call(app, test_host, _with_numa, vm.uuid)
    # 2 vCPUs fit its room (4); 4096 MiB passes its memory room (2048): refused.
    response = as_user.post(f"/vms/{vm.id}/resize", {"vcpus": "2", "memory_mib": "4096"},
                            headers={"Accept": "application/json"})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert "NUMA" in error
    assert error.endswith("box's definition (what it boots with) has 2 vCPUs and 512 MiB "
                          "of memory now.")
    desc = xml.parse_domain(host_call(app, test_host, lambda c: c.lookupByUUIDString(
        vm.uuid).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)))
    assert (desc.vcpus, desc.memory_mib) == (2, 512)
    with app.app_context():
        row = db.session.get(VM, vm.id)
        assert (row.vcpus, row.memory_mib, row.status) == (2, 512, VM.READY)
        used = user_service.quota_usage(db.session.execute(
            db.select(User).filter_by(username="alice")).scalar_one()).used
        assert (used.vcpus, used.memory_mib) == (2, 512)
