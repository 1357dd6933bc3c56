"""Small ElementTree builders and parsers for libvirt's XML. Never string formatting:
user text becomes element text or an attribute value through the library."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field


def _text(el: ET.Element | None, default: str = "") -> str:
    return el.text.strip() if el is not None and el.text else default


def to_string(root: ET.Element) -> str:
    return ET.tostring(root, encoding="unicode")


# -- capabilities -------------------------------------------------------------------
@dataclass(frozen=True)
class Guest:
    os_type: str
    arch: str
    domain_types: tuple[str, ...]


@dataclass(frozen=True)
class Capabilities:
    host_arch: str
    guests: tuple[Guest, ...] = field(default_factory=tuple)

    def domain_types(self, arch: str) -> tuple[str, ...]:
        """Domain types offered for full virtualisation ('hvm') on ``arch``."""
        for guest in self.guests:
            if guest.os_type == "hvm" and guest.arch == arch:
                return guest.domain_types
        return ()


def parse_capabilities(text: str) -> Capabilities:
    root = ET.fromstring(text)
    guests = []
    for guest in root.findall("guest"):
        arch = guest.find("arch")
        if arch is None:
            continue
        types = tuple(dict.fromkeys(d.get("type", "") for d in arch.findall("domain")))
        guests.append(Guest(_text(guest.find("os_type")), arch.get("name", ""), types))
    return Capabilities(_text(root.find("host/cpu/arch")), tuple(guests))


# -- storage --------------------------------------------------------------------------
def build_dir_pool(name: str, path: str) -> str:
    pool = ET.Element("pool", type="dir")
    ET.SubElement(pool, "name").text = name
    target = ET.SubElement(pool, "target")
    ET.SubElement(target, "path").text = path
    return to_string(pool)


@dataclass(frozen=True)
class PoolDesc:
    name: str
    kind: str
    path: str


def parse_pool(text: str) -> PoolDesc:
    root = ET.fromstring(text)
    return PoolDesc(_text(root.find("name")), root.get("type", ""),
                    _text(root.find("target/path")))


def build_overlay_volume(name: str, capacity_bytes: int, backing_path: str,
                         backing_format: str) -> str:
    """A qcow2 volume on top of a backing file. The backing format is stated, so
    nothing is ever probed from a guest-writable file."""
    vol = ET.Element("volume")
    ET.SubElement(vol, "name").text = name
    ET.SubElement(vol, "capacity", unit="bytes").text = str(int(capacity_bytes))
    ET.SubElement(vol, "allocation", unit="bytes").text = "0"
    target = ET.SubElement(vol, "target")
    ET.SubElement(target, "format", type="qcow2")
    backing = ET.SubElement(vol, "backingStore")
    ET.SubElement(backing, "path").text = backing_path
    ET.SubElement(backing, "format", type=backing_format)
    return to_string(vol)


@dataclass(frozen=True)
class VolumeDesc:
    name: str
    kind: str          # file, dir, block, ...
    path: str
    format: str
    capacity: int      # virtual size, bytes
    allocation: int
    backing_path: str | None
    backing_format: str | None


def _bytes(el: ET.Element | None) -> int:
    if el is None or not el.text:
        return 0
    factors = {"b": 1, "bytes": 1, "k": 1024, "kib": 1024, "kb": 1000, "m": 1024 ** 2,
               "mib": 1024 ** 2, "mb": 1000 ** 2, "g": 1024 ** 3, "gib": 1024 ** 3,
               "gb": 1000 ** 3, "t": 1024 ** 4, "tib": 1024 ** 4, "tb": 1000 ** 4,
               "p": 1024 ** 5, "pib": 1024 ** 5, "pb": 1000 ** 5, "e": 1024 ** 6,
               "eib": 1024 ** 6, "eb": 1000 ** 6}
    return int(el.text.strip()) * factors.get(el.get("unit", "bytes").lower(), 1)


def parse_volume(text: str) -> VolumeDesc:
    root = ET.fromstring(text)
    fmt = root.find("target/format")
    backing = root.find("backingStore")
    backing_path = _text(backing.find("path")) if backing is not None else ""
    backing_fmt = backing.find("format") if backing is not None else None
    return VolumeDesc(
        name=_text(root.find("name")),
        kind=root.get("type", "file"),
        path=_text(root.find("target/path")),
        format=fmt.get("type", "") if fmt is not None else "",
        capacity=_bytes(root.find("capacity")),
        allocation=_bytes(root.find("allocation")),
        backing_path=backing_path or None,
        backing_format=backing_fmt.get("type") if backing_fmt is not None else None,
    )


# -- domains --------------------------------------------------------------------------
LOUCLOUD_NS = "https://loucloud.org/xmlns/domain/1"
ET.register_namespace("loucloud", LOUCLOUD_NS)


@dataclass(frozen=True)
class DomainSpec:
    """Everything LouCloud decides about a new VM's domain."""
    name: str               # libvirt name, unique per host (not the user's text)
    uuid: str
    title: str              # the user's name for the VM: element text, never markup
    vcpus: int
    memory_mib: int
    disk_path: str
    domain_type: str        # kvm, qemu (or test)
    arch: str
    os_type: str = "linux"  # windows gets a localtime clock
    network: str | None = None
    mac: str | None = None
    vnc_listen: str = "127.0.0.1"
    vm_id: int | None = None
    owner: str = ""


def build_domain(spec: DomainSpec) -> str:
    dom = ET.Element("domain", type=spec.domain_type)
    ET.SubElement(dom, "name").text = spec.name
    ET.SubElement(dom, "uuid").text = spec.uuid
    ET.SubElement(dom, "title").text = spec.title
    ET.SubElement(dom, "description").text = f"LouCloud VM of {spec.owner}"
    meta = ET.SubElement(dom, "metadata")
    inst = ET.SubElement(meta, f"{{{LOUCLOUD_NS}}}instance")
    if spec.vm_id is not None:
        inst.set("vm", str(spec.vm_id))
    inst.set("owner", spec.owner)
    ET.SubElement(dom, "memory", unit="MiB").text = str(spec.memory_mib)
    ET.SubElement(dom, "currentMemory", unit="MiB").text = str(spec.memory_mib)
    ET.SubElement(dom, "vcpu", placement="static").text = str(spec.vcpus)
    os_el = ET.SubElement(dom, "os")
    ET.SubElement(os_el, "type", arch=spec.arch).text = "hvm"
    ET.SubElement(os_el, "boot", dev="hd")
    features = ET.SubElement(dom, "features")
    ET.SubElement(features, "acpi")
    ET.SubElement(features, "apic")
    ET.SubElement(dom, "clock", offset="localtime" if spec.os_type == "windows" else "utc")
    ET.SubElement(dom, "on_poweroff").text = "destroy"
    ET.SubElement(dom, "on_reboot").text = "restart"
    ET.SubElement(dom, "on_crash").text = "destroy"

    devices = ET.SubElement(dom, "devices")
    disk = ET.SubElement(devices, "disk", type="file", device="disk")
    ET.SubElement(disk, "driver", name="qemu", type="qcow2")
    ET.SubElement(disk, "source", file=spec.disk_path)
    ET.SubElement(disk, "target", dev="vda", bus="virtio")
    if spec.network:
        nic = ET.SubElement(devices, "interface", type="network")
        ET.SubElement(nic, "source", network=spec.network)
        if spec.mac:
            ET.SubElement(nic, "mac", address=spec.mac)
        ET.SubElement(nic, "model", type="virtio")
    graphics = ET.SubElement(devices, "graphics", type="vnc", port="-1", autoport="yes")
    ET.SubElement(graphics, "listen", type="address", address=spec.vnc_listen)
    video = ET.SubElement(devices, "video")
    ET.SubElement(video, "model", type="vga")
    ET.SubElement(devices, "input", type="tablet", bus="usb")
    ET.SubElement(devices, "serial", type="pty")
    ET.SubElement(devices, "memballoon", model="virtio")
    return to_string(dom)


@dataclass(frozen=True)
class DomainDesc:
    name: str
    uuid: str
    title: str
    domain_type: str
    vcpus: int
    memory_mib: int
    disk_paths: tuple[str, ...]
    macs: tuple[str, ...]
    networks: tuple[str, ...]
    vnc_port: int | None      # None until the domain runs (autoport)
    vnc_listen: str | None
    loucloud_vm: int | None   # our VM id when LouCloud created the domain
    clock: str


def parse_domain(text: str) -> DomainDesc:
    root = ET.fromstring(text)
    memory = root.find("memory")
    mem_mib = _bytes(memory) // (1024 ** 2) if memory is not None and memory.get("unit") \
        else int(_text(memory, "0")) // 1024
    graphics = root.find("devices/graphics[@type='vnc']")
    port = listen = None
    if graphics is not None:
        port_value = int(graphics.get("port", "-1"))
        port = port_value if port_value > 0 else None
        listen_el = graphics.find("listen[@type='address']")
        listen = listen_el.get("address") if listen_el is not None else graphics.get("listen")
    inst = root.find(f"metadata/{{{LOUCLOUD_NS}}}instance")
    vm = inst.get("vm") if inst is not None else None
    clock = root.find("clock")
    return DomainDesc(
        name=_text(root.find("name")),
        uuid=_text(root.find("uuid")),
        title=_text(root.find("title")),
        domain_type=root.get("type", ""),
        vcpus=int(_text(root.find("vcpu"), "0")),
        memory_mib=mem_mib,
        disk_paths=tuple(d.get("file", "") for d in root.findall("devices/disk/source")
                         if d.get("file")),
        macs=tuple(m.get("address", "") for m in root.findall("devices/interface/mac")),
        networks=tuple(s.get("network", "") for s in
                       root.findall("devices/interface[@type='network']/source")),
        vnc_port=port,
        vnc_listen=listen,
        loucloud_vm=int(vm) if vm and vm.isdigit() else None,
        clock=clock.get("offset", "utc") if clock is not None else "utc",
    )
