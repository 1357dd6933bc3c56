"""A domain's disks (issue 14): the <disk> element of a data disk, the disks a domain
XML holds, and a domain XML with one disk more or less (to change a stopped domain's
definition)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from .common import to_string

# The targets a VM's disks take, in order: vda is the system disk.
TARGETS = tuple(f"vd{letter}" for letter in "abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True)
class DiskDesc:
    target: str      # vda, vdb ... (hdc, sdc for CD-ROMs)
    path: str        # the file ("" when none: an empty drive)
    bus: str
    format: str
    device: str = "disk"     # or "cdrom"
    readonly: bool = False


def _disk(path: str, target: str, fmt: str) -> ET.Element:
    disk = ET.Element("disk", type="file", device="disk")
    ET.SubElement(disk, "driver", name="qemu", type=fmt)
    ET.SubElement(disk, "source", file=path)
    ET.SubElement(disk, "target", dev=target, bus="virtio")
    return disk


def build_disk(path: str, target: str, fmt: str = "qcow2") -> str:
    """A virtio data disk on the volume at ``path`` as ``target`` (for attach/detach)."""
    return to_string(_disk(path, target, fmt))


def parse_disks(domain_xml: str, cdroms: bool = False) -> tuple[DiskDesc, ...]:
    """The domain's disks (with ``cdroms``, its CD-ROM drives too), in the document's
    order."""
    out = []
    for disk in ET.fromstring(domain_xml).findall("devices/disk"):
        target, source, driver = disk.find("target"), disk.find("source"), disk.find("driver")
        device = disk.get("device", "disk")
        if target is None or device not in (("disk", "cdrom") if cdroms else ("disk",)):
            continue
        out.append(DiskDesc(target.get("dev", ""),
                            source.get("file", "") if source is not None else "",
                            target.get("bus", ""),
                            driver.get("type", "") if driver is not None else "",
                            device, disk.find("readonly") is not None))
    return tuple(out)


def next_target(used: set[str] | list[str] | tuple[str, ...]) -> str | None:
    """The first free target after vda (None: all 26 are taken)."""
    return next((t for t in TARGETS[1:] if t not in set(used)), None)


def with_disk(domain_xml: str, path: str, target: str, fmt: str = "qcow2") -> str:
    """The domain XML with a data disk added after its last disk."""
    root = ET.fromstring(domain_xml)
    devices = root.find("devices")
    if devices is None:
        devices = ET.SubElement(root, "devices")
    children = list(devices)
    last = max((i for i, el in enumerate(children) if el.tag == "disk"), default=-1)
    devices.insert(last + 1, _disk(path, target, fmt))
    return to_string(root)


def without_disk(domain_xml: str, target: str) -> tuple[str, bool]:
    """The domain XML without the disk at ``target``, and whether it had one."""
    root = ET.fromstring(domain_xml)
    devices = root.find("devices")
    found = False
    for disk in list(devices if devices is not None else []):
        t = disk.find("target")
        if disk.tag == "disk" and disk.get("device") == "disk" and t is not None and \
                t.get("dev") == target:
            devices.remove(disk)
            found = True
    return to_string(root), found
