"""Snapshot XML (virt/xml/snapshot.py): what LouCloud asks libvirt for, read back as
libvirt describes internal and external snapshots."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from loucloud.virt.xml.snapshot import build_snapshot, parse_snapshot


def test_the_request_names_no_disk_and_no_memory_file():
    root = ET.fromstring(build_snapshot("before <upgrade> & co", "why"))
    assert root.tag == "domainsnapshot"
    assert root.find("name").text == "before <upgrade> & co"
    assert root.find("description").text == "why"
    assert root.find("disks") is None and root.find("memory") is None
    assert parse_snapshot(build_snapshot("x")).name == "x"


def test_a_running_domains_internal_snapshot_holds_its_memory():
    desc = parse_snapshot("""<domainsnapshot><name>s1</name><state>running</state>
        <parent><name>s0</name></parent><creationTime>1700000000</creationTime>
        <memory snapshot='internal'/><disks><disk name='vda' snapshot='internal'/>
        <disk name='hdc' snapshot='no'/></disks></domainsnapshot>""")
    assert (desc.name, desc.state, desc.created, desc.memory, desc.location, desc.parent) \
        == ("s1", "running", 1700000000, True, "internal", "s0")


def test_a_shut_off_domains_snapshot_holds_its_disks_only():
    desc = parse_snapshot("""<domainsnapshot><name>d</name><state>shutoff</state>
        <creationTime>5</creationTime><memory snapshot='no'/>
        <disks><disk name='vda' snapshot='internal'/></disks></domainsnapshot>""")
    assert (desc.memory, desc.location, desc.parent) == (False, "internal", None)


def test_external_snapshots_are_told_apart():
    desc = parse_snapshot("""<domainsnapshot><name>e</name><state>disk-snapshot</state>
        <creationTime>5</creationTime><memory snapshot='no'/>
        <disks><disk name='vda' snapshot='external'><source file='/x.e'/></disk></disks>
        </domainsnapshot>""")
    assert (desc.memory, desc.location) == (False, "external")


def test_the_sizes_a_revert_puts_back_are_read_from_the_snapshots_definition():
    """<vcpu current> and <currentMemory> are the sizes, <vcpu> and <memory> the room;
    a running domain's persistent definition, when libvirt kept it apart
    (<inactiveDomain>), is what a revert defines again."""
    domain = """<domain type='kvm'><name>d</name>
        <memory unit='GiB'>4</memory><currentMemory unit='KiB'>1048576</currentMemory>
        <vcpu placement='static' current='2'>8</vcpu></domain>"""
    desc = parse_snapshot(f"""<domainsnapshot><name>s</name><state>running</state>
        <creationTime>5</creationTime>{domain}</domainsnapshot>""")
    assert desc.sizes == (2, 8, 1024, 4096)
    inactive = """<inactiveDomain type='kvm'><name>d</name><memory unit='KiB'>524288
        </memory><vcpu>3</vcpu></inactiveDomain>"""
    desc = parse_snapshot(f"""<domainsnapshot><name>s</name><state>running</state>
        <creationTime>5</creationTime>{domain}{inactive}</domainsnapshot>""")
    assert desc.sizes == (3, 3, 512, 512)
    assert parse_snapshot("<domainsnapshot><name>s</name></domainsnapshot>").sizes is None
