"""loucloud/virt/xml.py: each builder round-trips through its parser, user text stays
text, and libvirt's real test driver accepts what the builders make."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace

import libvirt
import pytest

from loucloud.virt import xml
from loucloud.virt.xml import DomainSpec, Nic
from tests.factories import write_test_node

HOSTILE = """<>&'" a</title><devices><disk/></devices>"""
UUID = "6f1c7c9e-2b8e-4a35-9d43-0b4f3c1b2a10"
MAC = "52:54:00:12:34:56"
GIB = 1024 ** 3


def spec(**changes) -> DomainSpec:
    base = DomainSpec(name="lc-0042", uuid=UUID, title="web server 1", vcpus=2,
                      memory_mib=1536, disk_path="/var/lib/libvirt/loucloud/lc-0042.qcow2",
                      domain_type="kvm", arch="x86_64", os_type="linux",
                      nic=Nic("network", "default", MAC), vnc_listen="127.0.0.1", vm_id=42,
                      owner="alice")
    return replace(base, **changes)


@pytest.fixture
def conn(tmp_path):
    """A connection to a fresh simulated host (libvirt's test driver)."""
    libvirt.registerErrorHandler(lambda *a: None, None)
    uri = write_test_node(tmp_path / "n.xml", pools={"images": "/var/lib/images"},
                          volumes={"images": [("base.qcow2", GIB, "qcow2")]})
    connection = libvirt.open(uri)
    yield connection
    connection.close()


def host_arch(connection) -> str:
    return xml.parse_capabilities(connection.getCapabilities()).host_arch


# -- domains --------------------------------------------------------------------------
def test_domain_round_trip():
    desc = xml.parse_domain(xml.build_domain(spec()))
    assert (desc.name, desc.uuid, desc.title, desc.domain_type) == \
        ("lc-0042", UUID, "web server 1", "kvm")
    assert (desc.vcpus, desc.memory_mib) == (2, 1536)
    assert desc.disk_paths == ("/var/lib/libvirt/loucloud/lc-0042.qcow2",)
    assert desc.macs == (MAC,) and desc.networks == ("default",)
    assert desc.vnc_listen == "127.0.0.1" and desc.vnc_port is None
    assert desc.loucloud_vm == 42
    assert desc.clock == "utc"


@pytest.mark.parametrize("os_type, clock", [("linux", "utc"), ("windows", "localtime")])
def test_clock_follows_the_guest_os(os_type, clock):
    assert xml.parse_domain(xml.build_domain(spec(os_type=os_type))).clock == clock


def test_without_vm_id_there_is_no_loucloud_vm():
    desc = xml.parse_domain(xml.build_domain(spec(vm_id=None)))
    assert desc.loucloud_vm is None


def test_hostile_title_stays_text():
    text = xml.build_domain(spec(title=HOSTILE))
    root = ET.fromstring(text)
    assert len(root.findall(".//disk[@device='disk']")) == 1
    assert [el.text for el in root.iter("title")] == [HOSTILE]
    assert xml.parse_domain(text).title == HOSTILE
    assert xml.parse_domain(text).disk_paths == ("/var/lib/libvirt/loucloud/lc-0042.qcow2",)


def test_hostile_owner_stays_text():
    owner = 'x" vm="7'
    root = ET.fromstring(xml.build_domain(spec(owner=owner, vm_id=3)))
    inst = root.find(f"metadata/{{{xml.LOUCLOUD_NS}}}instance")
    assert inst.get("owner") == owner and inst.get("vm") == "3"


def test_vnc_on_loopback_never_mentions_any_address():
    text = xml.build_domain(spec(vnc_listen="127.0.0.1"))
    assert "0.0.0.0" not in text
    assert xml.parse_domain(text).vnc_listen == "127.0.0.1"


def test_no_network_means_no_interface():
    text = xml.build_domain(spec(nic=None))
    assert ET.fromstring(text).findall(".//interface") == []
    desc = xml.parse_domain(text)
    assert desc.networks == () and desc.macs == ()


def test_parse_domain_reads_memory_in_kib_without_unit():
    text = ("<domain type='kvm'><name>d</name><memory>2097152</memory><vcpu>3</vcpu>"
            "<devices><graphics type='vnc' port='5901' listen='10.0.0.5'/></devices>"
            "</domain>")
    desc = xml.parse_domain(text)
    assert (desc.memory_mib, desc.vcpus, desc.vnc_port, desc.vnc_listen) == \
        (2048, 3, 5901, "10.0.0.5")
    assert desc.loucloud_vm is None and desc.clock == "utc"


# -- libvirt's test driver accepts the domain -----------------------------------------
def _define(conn, domain_spec: DomainSpec):
    dom = conn.defineXML(xml.build_domain(domain_spec))
    return dom, xml.parse_domain(dom.XMLDesc(0))


def test_libvirt_accepts_the_domain_and_keeps_what_we_said(conn):
    dom, desc = _define(conn, spec(domain_type="test", arch=host_arch(conn), title=HOSTILE))
    assert dom.name() == "lc-0042" and dom.UUIDString() == UUID
    assert desc.title == HOSTILE
    assert len(ET.fromstring(dom.XMLDesc(0)).findall(".//disk[@device='disk']")) == 1
    assert desc.disk_paths == ("/var/lib/libvirt/loucloud/lc-0042.qcow2",)
    assert (desc.vcpus, desc.memory_mib) == (2, 1536)
    assert desc.macs == (MAC,) and desc.networks == ("default",)
    assert desc.vnc_listen == "127.0.0.1" and desc.loucloud_vm == 42
    assert desc.clock == "utc"
    assert "0.0.0.0" not in dom.XMLDesc(0)


def test_libvirt_keeps_the_windows_clock_and_no_interface(conn):
    dom, desc = _define(conn, spec(domain_type="test", arch=host_arch(conn),
                                   os_type="windows", nic=None))
    assert desc.clock == "localtime"
    assert desc.networks == () and desc.macs == ()
    assert ET.fromstring(dom.XMLDesc(0)).findall(".//interface") == []


def test_libvirt_accepts_every_device_we_add(conn):
    """The seed and install CD-ROMs, a bridge NIC, UEFI, the serial line, the console
    and the guest agent's channel: the test driver parses and keeps them."""
    dom, desc = _define(conn, spec(domain_type="test", arch=host_arch(conn),
                                   nic=Nic("bridge", "br0", MAC), seed_path="/p/seed.iso",
                                   cdrom_path="/p/install.iso"))
    assert desc.cdroms == {"hdc": "/p/install.iso", "hdd": "/p/seed.iso"}
    assert desc.nics == (Nic("bridge", "br0", MAC),) and desc.networks == ()
    assert desc.has_serial and desc.has_agent_channel
    root = ET.fromstring(dom.XMLDesc(0))
    assert [b.get("dev") for b in root.findall("os/boot")] == ["cdrom", "hd"]
    assert root.find("devices/console/target").get("type") == "serial"


def test_devices_round_trip():
    desc = xml.parse_domain(xml.build_domain(spec(seed_path="/p/seed.iso",
                                                  nic=Nic("user"), firmware="uefi")))
    assert desc.cdroms == {"hdc": "", "hdd": "/p/seed.iso"}  # the install drive, empty
    assert desc.nics == (Nic("user", "", None),)
    assert desc.firmware == "uefi" and desc.has_agent_channel and desc.has_serial
    root = ET.fromstring(xml.build_domain(spec()))
    # An empty install drive first: an ISO inserted later boots, else the disk does.
    assert [b.get("dev") for b in root.findall("os/boot")] == ["cdrom", "hd"]
    drive = root.find("devices/disk[@device='cdrom']")
    assert drive.find("source") is None and drive.find("target").get("dev") == "hdc"
    assert root.find("os").get("firmware") is None


BASELINE = ("<cpu mode='custom' match='exact'><model fallback='forbid'>Skylake-Client</model>"
            "<vendor>Intel</vendor><feature policy='require' name='popcnt'/></cpu>")


@pytest.mark.parametrize("changes, mode, model", [
    ({}, "host-model", None),                                    # KVM: the host's model
    ({"cpu_mode": "host-passthrough"}, "host-passthrough", None),
    ({"cpu_mode": "baseline", "cpu_baseline": BASELINE}, "custom", "Skylake-Client"),
    ({"cpu_mode": "baseline"}, "host-model", None),              # no baseline computed
    ({"domain_type": "qemu"}, "maximum", None),                  # TCG: QEMU's "max"
    ({"domain_type": "qemu", "cpu_mode": "host-passthrough"}, "maximum", None),
])
def test_cpu_model_fits_the_accelerator(changes, mode, model):
    root = ET.fromstring(xml.build_domain(spec(**changes)))
    cpu = root.find("cpu")
    assert cpu.get("mode") == mode
    assert (cpu.findtext("model") if cpu.find("model") is not None else None) == model
    if model:
        assert cpu.find("feature[@name='popcnt']").get("policy") == "require"


def test_the_test_driver_gets_no_cpu_element():
    assert ET.fromstring(xml.build_domain(spec(domain_type="test"))).find("cpu") is None


# -- capabilities ---------------------------------------------------------------------
CAPS = """<capabilities>
  <host><cpu><arch>x86_64</arch></cpu></host>
  <guest><os_type>xen</os_type><arch name='x86_64'><domain type='xen'/></arch></guest>
  <guest><os_type>hvm</os_type><arch name='i686'><domain type='qemu'/></arch></guest>
  <guest><os_type>hvm</os_type>
    <arch name='x86_64'><wordsize>64</wordsize>
      <domain type='qemu'/><domain type='kvm'/><domain type='qemu'/></arch></guest>
</capabilities>"""


def test_capabilities_pick_hvm_domain_types_for_the_host_arch():
    caps = xml.parse_capabilities(CAPS)
    assert caps.host_arch == "x86_64"
    assert caps.domain_types(caps.host_arch) == ("qemu", "kvm")
    assert caps.domain_types("i686") == ("qemu",)
    assert caps.domain_types("aarch64") == ()


def test_capabilities_of_the_test_driver(conn):
    caps = xml.parse_capabilities(conn.getCapabilities())
    assert caps.host_arch
    assert caps.domain_types(caps.host_arch) == ("test",)


# -- storage --------------------------------------------------------------------------
def test_overlay_volume_round_trip():
    text = xml.build_overlay_volume("lc-0042.qcow2", 20 * GIB, "/var/lib/images/base.raw",
                                    "raw")
    vol = xml.parse_volume(text)
    assert (vol.name, vol.format, vol.capacity, vol.allocation) == \
        ("lc-0042.qcow2", "qcow2", 20 * GIB, 0)
    assert (vol.backing_path, vol.backing_format) == ("/var/lib/images/base.raw", "raw")


def test_libvirt_creates_the_overlay_volume_as_described(conn):
    pool = conn.storagePoolLookupByName("images")
    vol = pool.createXML(xml.build_overlay_volume(
        "child.qcow2", 3 * GIB, "/var/lib/images/base.qcow2", "qcow2"), 0)
    desc = xml.parse_volume(vol.XMLDesc(0))
    assert (desc.name, desc.kind, desc.format, desc.capacity) == \
        ("child.qcow2", "file", "qcow2", 3 * GIB)
    assert desc.path == "/var/lib/images/child.qcow2" == vol.path()
    assert (desc.backing_path, desc.backing_format) == ("/var/lib/images/base.qcow2", "qcow2")


def test_parse_volume_with_units_like_libvirt_writes_them():
    text = """<volume type='block'>
      <name>sda1</name>
      <key>/dev/sda1</key>
      <capacity unit='G'>10</capacity>
      <allocation unit='KiB'>512</allocation>
      <target><path>/dev/sda1</path><format type='raw'/></target>
    </volume>"""
    vol = xml.parse_volume(text)
    assert (vol.name, vol.kind, vol.path, vol.format) == ("sda1", "block", "/dev/sda1", "raw")
    assert (vol.capacity, vol.allocation) == (10 * GIB, 512 * 1024)
    assert vol.backing_path is None and vol.backing_format is None


@pytest.mark.parametrize("unit, factor", [
    (None, 1), ("bytes", 1), ("b", 1), ("KB", 1000), ("k", 1024), ("MiB", 1024 ** 2),
    ("MB", 1000 ** 2), ("GiB", GIB), ("GB", 1000 ** 3), ("T", 1024 ** 4), ("TB", 1000 ** 4),
])
def test_parse_volume_units(unit, factor):
    attr = f" unit='{unit}'" if unit else ""
    vol = xml.parse_volume(f"<volume><name>v</name><capacity{attr}>7</capacity></volume>")
    assert vol.capacity == 7 * factor
    assert vol.kind == "file" and vol.format == ""


def test_parse_volume_of_a_directory():
    vol = xml.parse_volume("<volume type='dir'><name>sub</name><capacity unit='bytes'>0"
                           "</capacity><target><path>/var/lib/images/sub</path>"
                           "<format type='dir'/></target></volume>")
    assert (vol.kind, vol.format, vol.path) == ("dir", "dir", "/var/lib/images/sub")


def test_dir_pool_round_trip():
    pool = xml.parse_pool(xml.build_dir_pool("loucloud", "/var/lib/libvirt/loucloud"))
    assert (pool.name, pool.kind, pool.path) == ("loucloud", "dir", "/var/lib/libvirt/loucloud")


def test_libvirt_defines_the_dir_pool_as_described(conn):
    pool = conn.storagePoolDefineXML(xml.build_dir_pool("loucloud", "/srv/loucloud"), 0)
    desc = xml.parse_pool(pool.XMLDesc(0))
    assert (desc.name, desc.kind, desc.path) == ("loucloud", "dir", "/srv/loucloud")
    assert conn.storagePoolLookupByName("loucloud").name() == "loucloud"
