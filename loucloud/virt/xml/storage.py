"""Storage pool and volume XML."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from .common import _bytes, _text, to_string


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


def _qcow2_volume(name: str, capacity_bytes: int) -> ET.Element:
    vol = ET.Element("volume")
    ET.SubElement(vol, "name").text = name
    ET.SubElement(vol, "capacity", unit="bytes").text = str(int(capacity_bytes))
    ET.SubElement(vol, "allocation", unit="bytes").text = "0"
    target = ET.SubElement(vol, "target")
    ET.SubElement(target, "format", type="qcow2")
    return vol


def build_blank_volume(name: str, capacity_bytes: int) -> str:
    """An empty qcow2 volume (an install target)."""
    return to_string(_qcow2_volume(name, capacity_bytes))


def build_overlay_volume(name: str, capacity_bytes: int, backing_path: str,
                         backing_format: str) -> str:
    """A qcow2 volume on top of a backing file. The backing format is stated, so
    nothing is ever probed from a guest-writable file."""
    vol = _qcow2_volume(name, capacity_bytes)
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




def build_raw_volume(name: str, capacity_bytes: int) -> str:
    """A raw volume of ``capacity_bytes`` (to upload a file into)."""
    vol = ET.Element("volume")
    ET.SubElement(vol, "name").text = name
    ET.SubElement(vol, "capacity", unit="bytes").text = str(int(capacity_bytes))
    ET.SubElement(vol, "allocation", unit="bytes").text = "0"
    target = ET.SubElement(vol, "target")
    ET.SubElement(target, "format", type="raw")
    return to_string(vol)
