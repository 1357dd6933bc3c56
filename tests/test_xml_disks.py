"""Issue 14's XML: the domain's growth room (<vcpu current=N>MAX, <memory> over
<currentMemory>), data disks, and a stopped domain's definition with a disk more or
less; each round-trips through its parser and libvirt's test driver takes it."""
from __future__ import annotations

from dataclasses import replace

import libvirt
import pytest

from loucloud.virt import xml
from tests.test_xml import spec
from tests.factories import write_test_node

PATH = "/var/lib/libvirt/loucloud/lc-0042-vdb.qcow2"


@pytest.fixture
def conn(tmp_path):
    libvirt.registerErrorHandler(lambda *a: None, None)
    connection = libvirt.open(write_test_node(tmp_path / "n.xml"))
    yield connection
    connection.close()


def test_growth_room_round_trip():
    desc = xml.parse_domain(xml.build_domain(spec(max_vcpus=8, max_memory_mib=6144)))
    assert (desc.vcpus, desc.max_vcpus, desc.memory_mib, desc.max_memory_mib) == \
        (2, 8, 1536, 6144)


def test_no_growth_room_is_its_size():
    text = xml.build_domain(spec())
    assert "current=" not in text
    desc = xml.parse_domain(text)
    assert (desc.vcpus, desc.max_vcpus, desc.memory_mib, desc.max_memory_mib) == \
        (2, 2, 1536, 1536)


def test_a_maximum_below_the_size_is_the_size():
    desc = xml.parse_domain(xml.build_domain(spec(max_vcpus=1, max_memory_mib=512)))
    assert (desc.vcpus, desc.max_vcpus, desc.memory_mib, desc.max_memory_mib) == \
        (2, 2, 1536, 1536)


def test_libvirt_keeps_the_growth_room(conn):
    s = replace(spec(max_vcpus=6, max_memory_mib=4096), domain_type="test")
    dom = conn.defineXML(xml.build_domain(s))
    assert dom.vcpusFlags(libvirt.VIR_DOMAIN_AFFECT_CONFIG) == 2
    assert dom.vcpusFlags(libvirt.VIR_DOMAIN_AFFECT_CONFIG |
                          libvirt.VIR_DOMAIN_VCPU_MAXIMUM) == 6
    assert dom.maxMemory() == 4096 * 1024
    desc = xml.parse_domain(dom.XMLDesc(0))
    assert (desc.vcpus, desc.max_vcpus, desc.memory_mib, desc.max_memory_mib) == \
        (2, 6, 1536, 4096)


def test_data_disk_round_trip():
    [disk] = xml.parse_disks("<domain><devices>" + xml.build_disk(PATH, "vdb") +
                             "</devices></domain>")
    assert disk == xml.DiskDesc("vdb", PATH, "virtio", "qcow2")


def test_a_disk_added_to_and_removed_from_a_definition():
    base = xml.build_domain(spec())
    more = xml.with_disk(base, PATH, "vdb")
    assert [d.target for d in xml.parse_disks(more)] == ["vda", "vdb"]
    assert xml.parse_disks(more)[1].path == PATH
    # the CD-ROMs stay, and are no disks
    assert xml.parse_domain(more).cdroms == xml.parse_domain(base).cdroms
    less, found = xml.without_disk(more, "vdb")
    assert found and [d.target for d in xml.parse_disks(less)] == ["vda"]
    same, found = xml.without_disk(less, "vdc")
    assert not found and xml.parse_disks(same) == xml.parse_disks(less)


def test_a_hostile_path_stays_an_attribute():
    hostile = "/x/'\"><disk device='disk'/>.qcow2"
    [disk] = xml.parse_disks(xml.with_disk("<domain><devices/></domain>", hostile, "vdb"))
    assert disk.path == hostile


def test_libvirt_takes_the_definition_with_the_disk(conn):
    s = replace(spec(), domain_type="test")
    dom = conn.defineXML(xml.build_domain(s))
    conn.defineXML(xml.with_disk(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), PATH, "vdb"))
    assert [(d.target, d.path) for d in xml.parse_disks(dom.XMLDesc(0))] == \
        [("vda", s.disk_path), ("vdb", PATH)]


@pytest.mark.parametrize("used, expected", [
    ((), "vdb"), (("vda",), "vdb"), (("vda", "vdb", "vdd"), "vdc"),
    (tuple(xml.disks.TARGETS), None)])
def test_next_target(used, expected):
    assert xml.next_target(used) == expected


def test_cdrom_drives_only_when_asked():
    """A migration copies the writable disks only: it reads the drives' kinds from the
    same parser (the install drive and the seed are CD-ROMs, read-only)."""
    text = ("<domain><devices>" + xml.build_disk(PATH, "vdb") +
            "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/>"
            "<source file='/pool/seed.iso'/><target dev='hdd' bus='ide'/><readonly/></disk>"
            "</devices></domain>")
    assert [d.target for d in xml.parse_disks(text)] == ["vdb"]
    disk, cdrom = xml.parse_disks(text, cdroms=True)
    assert (disk.device, disk.readonly) == ("disk", False)
    assert (cdrom.target, cdrom.device, cdrom.readonly, cdrom.path) == \
        ("hdd", "cdrom", True, "/pool/seed.iso")
