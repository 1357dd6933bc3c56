"""Domain XML: what LouCloud decides about a VM, and what it reads back."""
from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from .common import _bytes, _text, to_string

LOUCLOUD_NS = "https://loucloud.org/xmlns/domain/1"
ET.register_namespace("loucloud", LOUCLOUD_NS)
AGENT_CHANNEL = "org.qemu.guest_agent.0"
CPU_MODES = ("host-model", "host-passthrough", "baseline")


@dataclass(frozen=True)
class Nic:
    """The VM's network card: on a libvirt network (``kind`` "network", ``source`` its
    name), on a host bridge ("bridge", the bridge's name), or QEMU's user-mode network
    ("user", no source: a session daemon's VMs)."""
    kind: str
    source: str = ""
    mac: str | None = None


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
    nic: Nic | None = None
    vnc_listen: str = "127.0.0.1"
    vm_id: int | None = None
    owner: str = ""
    seed_path: str | None = None        # cloud-init NoCloud seed, a read-only CD-ROM
    cdrom_path: str | None = None       # install medium (an ISO), boots first
    firmware: str = "bios"              # or "uefi" (OVMF, chosen by libvirt)
    cpu_mode: str = "host-model"        # for KVM: CPU_MODES; TCG gets QEMU's "max"
    cpu_baseline: str | None = None     # the <cpu> element libvirt computed (baseline)
    cpu_disabled: tuple[str, ...] = ()  # features the host's KVM cannot give (nested)
    # How far the running domain can grow without a restart (issue 14, resize): the
    # <vcpu> maximum (hot-plug) and <memory> (the balloon); None: its size.
    max_vcpus: int | None = None
    max_memory_mib: int | None = None


def _cpu(dom: ET.Element, spec: DomainSpec) -> None:
    """KVM guests get the host's model (or a pool-wide baseline, for migration between
    different CPUs); TCG cannot model the host, it gets QEMU's "max" (every feature it
    emulates, x86-64-v2 and more) instead of the bare default qemu64."""
    if spec.domain_type != "kvm":
        if spec.domain_type == "qemu":
            ET.SubElement(dom, "cpu", mode="maximum", check="none")
        return
    if spec.cpu_mode == "baseline" and spec.cpu_baseline:
        cpu = ET.fromstring(spec.cpu_baseline)
        cpu.attrib.pop("mode", None)
        cpu.set("mode", "custom")
        cpu.set("match", "exact")
        cpu.set("check", "partial")
        dom.append(cpu)
    elif spec.cpu_mode == "host-passthrough":
        cpu = ET.SubElement(dom, "cpu", mode="host-passthrough", check="none")
    else:
        cpu = ET.SubElement(dom, "cpu", mode="host-model", check="partial")
    for name in spec.cpu_disabled:
        ET.SubElement(cpu, "feature", policy="disable", name=name)


def _cdrom(devices: ET.Element, path: str | None, dev: str, bus: str) -> ET.Element:
    disk = ET.SubElement(devices, "disk", type="file", device="cdrom")
    ET.SubElement(disk, "driver", name="qemu", type="raw")
    if path:
        ET.SubElement(disk, "source", file=path)
    ET.SubElement(disk, "target", dev=dev, bus=bus)
    ET.SubElement(disk, "readonly")
    return disk


def install_drive(arch: str) -> tuple[str, str]:
    """The install media drive's target dev and bus (fixed, so media can change)."""
    return ("hdc", "ide") if arch in ("x86_64", "i686") else ("sdc", "scsi")


def build_cdrom(path: str | None, dev: str, bus: str) -> str:
    """The install drive with ``path`` inserted (None: empty), for a media change."""
    holder = ET.Element("devices")
    return to_string(_cdrom(holder, path, dev, bus))


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
    max_memory = max(spec.memory_mib, spec.max_memory_mib or 0)
    max_vcpus = max(spec.vcpus, spec.max_vcpus or 0)
    ET.SubElement(dom, "memory", unit="MiB").text = str(max_memory)
    ET.SubElement(dom, "currentMemory", unit="MiB").text = str(spec.memory_mib)
    vcpu = ET.SubElement(dom, "vcpu", placement="static")
    vcpu.text = str(max_vcpus)
    if max_vcpus > spec.vcpus:
        vcpu.set("current", str(spec.vcpus))
    os_el = ET.SubElement(dom, "os")
    if spec.firmware == "uefi":
        os_el.set("firmware", "efi")
    ET.SubElement(os_el, "type", arch=spec.arch).text = "hvm"
    # The install drive first: a VM boots an inserted ISO, else (empty) its disk.
    ET.SubElement(os_el, "boot", dev="cdrom")
    ET.SubElement(os_el, "boot", dev="hd")
    features = ET.SubElement(dom, "features")
    ET.SubElement(features, "acpi")
    ET.SubElement(features, "apic")
    _cpu(dom, spec)
    ET.SubElement(dom, "clock", offset="localtime" if spec.os_type == "windows" else "utc")
    ET.SubElement(dom, "on_poweroff").text = "destroy"
    ET.SubElement(dom, "on_reboot").text = "restart"
    ET.SubElement(dom, "on_crash").text = "destroy"

    devices = ET.SubElement(dom, "devices")
    disk = ET.SubElement(devices, "disk", type="file", device="disk")
    ET.SubElement(disk, "driver", name="qemu", type="qcow2")
    ET.SubElement(disk, "source", file=spec.disk_path)
    ET.SubElement(disk, "target", dev="vda", bus="virtio")
    # Two CD-ROM drives at fixed places: install media (hdc, always there, empty or not,
    # so that an ISO can be inserted and ejected later) and the first-boot seed (hdd).
    dev, bus = install_drive(spec.arch)
    _cdrom(devices, spec.cdrom_path, dev, bus)
    if spec.seed_path:
        _cdrom(devices, spec.seed_path, "hdd" if bus == "ide" else "sdd", bus)
    if spec.nic is not None:
        nic = ET.SubElement(devices, "interface", type=spec.nic.kind)
        if spec.nic.kind == "network":
            ET.SubElement(nic, "source", network=spec.nic.source)
        elif spec.nic.kind == "bridge":
            ET.SubElement(nic, "source", bridge=spec.nic.source)
        if spec.nic.mac:
            ET.SubElement(nic, "mac", address=spec.nic.mac)
        ET.SubElement(nic, "model", type="virtio")
    # A password nobody knows: the screen opens only when LouCloud sets a fresh one
    # (screen_password) for its console proxy.
    graphics = ET.SubElement(devices, "graphics", type="vnc", port="-1", autoport="yes",
                             passwd=secrets.token_hex(4))
    ET.SubElement(graphics, "listen", type="address", address=spec.vnc_listen)
    video = ET.SubElement(devices, "video")
    ET.SubElement(video, "model", type="vga")
    ET.SubElement(devices, "input", type="tablet", bus="usb")
    # The serial line, which the text console reaches through libvirt's console stream
    # (a pty on the host, nothing listening on the network).
    serial = ET.SubElement(devices, "serial", type="pty")
    ET.SubElement(serial, "target", port="0")
    console = ET.SubElement(devices, "console", type="pty")
    ET.SubElement(console, "target", type="serial", port="0")
    channel = ET.SubElement(devices, "channel", type="unix")
    ET.SubElement(channel, "target", type="virtio", name=AGENT_CHANNEL)
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
    nics: tuple[Nic, ...] = field(default_factory=tuple)
    cdroms: dict[str, str] = field(default_factory=dict)   # target dev -> file ("": empty)
    cpu_mode: str | None = None
    firmware: str = "bios"
    has_agent_channel: bool = False
    has_serial: bool = False
    max_vcpus: int = 0        # <vcpu>'s maximum (vcpus: its current count)
    max_memory_mib: int = 0   # <memory> (memory_mib: <currentMemory>)


def _mib(el: ET.Element | None) -> int:
    if el is None:
        return 0
    return _bytes(el) // (1024 ** 2) if el.get("unit") else int(_text(el, "0")) // 1024


def domain_sizes(root: ET.Element) -> tuple[int, int, int, int]:
    """(vCPUs, max vCPUs, memory MiB, max memory MiB) of a <domain> element: <vcpu>'s
    current count and maximum, <currentMemory> and <memory>."""
    max_mib = _mib(root.find("memory"))
    mem_mib = _mib(root.find("currentMemory")) or max_mib
    vcpu = root.find("vcpu")
    max_vcpus = int(_text(vcpu, "0"))
    vcpus = int(vcpu.get("current", max_vcpus)) if vcpu is not None else 0
    return vcpus, max_vcpus, mem_mib, max_mib


def parse_domain(text: str) -> DomainDesc:
    root = ET.fromstring(text)
    vcpus, max_vcpus, mem_mib, max_mib = domain_sizes(root)
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
    nics = []
    for iface in root.findall("devices/interface"):
        source, mac = iface.find("source"), iface.find("mac")
        kind = iface.get("type", "")
        src = "" if source is None else (source.get("network") or source.get("bridge") or "")
        nics.append(Nic(kind, src, mac.get("address") if mac is not None else None))
    cdroms = {}
    for disk in root.findall("devices/disk[@device='cdrom']"):
        target, source = disk.find("target"), disk.find("source")
        if target is not None:
            cdroms[target.get("dev", "")] = source.get("file", "") if source is not None else ""
    cpu = root.find("cpu")
    os_el = root.find("os")
    loader = root.find("os/loader")
    uefi = (os_el is not None and os_el.get("firmware") == "efi") or \
        (loader is not None and loader.get("type") == "pflash")
    return DomainDesc(
        name=_text(root.find("name")),
        uuid=_text(root.find("uuid")),
        title=_text(root.find("title")),
        domain_type=root.get("type", ""),
        vcpus=vcpus,
        memory_mib=mem_mib,
        disk_paths=tuple(d.get("file", "") for d in
                         root.findall("devices/disk[@device='disk']/source") if d.get("file")),
        macs=tuple(n.mac for n in nics if n.mac),
        networks=tuple(n.source for n in nics if n.kind == "network"),
        vnc_port=port,
        vnc_listen=listen,
        loucloud_vm=int(vm) if vm and vm.isdigit() else None,
        clock=clock.get("offset", "utc") if clock is not None else "utc",
        nics=tuple(nics),
        cdroms=cdroms,
        cpu_mode=cpu.get("mode") if cpu is not None else None,
        firmware="uefi" if uefi else "bios",
        has_agent_channel=root.find(
            f"devices/channel/target[@name='{AGENT_CHANNEL}']") is not None,
        has_serial=root.find("devices/serial") is not None,
        max_vcpus=max_vcpus,
        max_memory_mib=max_mib,
    )


def screen_password(domain_xml: str, password: str, valid_to: str) -> str:
    """The domain's VNC <graphics> element (from its live XML, read with the secure
    flag; it has one) with a new password valid until ``valid_to`` (UTC,
    YYYY-MM-DDTHH:MM:SS), for updateDeviceFlags."""
    graphics = ET.fromstring(domain_xml).find("devices/graphics[@type='vnc']")
    graphics.set("passwd", password)
    graphics.set("passwdValidTo", valid_to)
    return to_string(graphics)
