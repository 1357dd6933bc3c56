"""Domain snapshot XML (libvirt's <domainsnapshot>): what LouCloud asks for, and what
it reads back of a snapshot libvirt keeps."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from .common import _text, to_string
from .domain import domain_sizes

# The states a snapshot's domain was in: with memory for a running or paused domain
# (a full system checkpoint), disk only ("shutoff") for a shut-off one.
MEMORY_STATES = ("running", "paused", "blocked", "pmsuspended")


def build_snapshot(name: str, description: str = "") -> str:
    """An internal snapshot of every disk that can take one (qcow2), of the memory too
    when the domain runs: libvirt chooses internal snapshots for qcow2 disks when the
    XML names no disk and no memory file."""
    snap = ET.Element("domainsnapshot")
    ET.SubElement(snap, "name").text = name
    if description:
        ET.SubElement(snap, "description").text = description
    return to_string(snap)


@dataclass(frozen=True)
class SnapshotDesc:
    name: str
    state: str             # the domain's state when it was taken
    created: int           # epoch seconds
    memory: bool           # holds the running machine (memory and devices)
    location: str          # "internal" or "external" (of its disks)
    description: str = ""
    parent: str | None = None
    disks: tuple[tuple[str, str], ...] = ()   # (target, file) of its domain's disks
    # (vCPUs, max vCPUs, memory MiB, max memory MiB) of the definition a revert puts
    # back: <inactiveDomain> (a running domain's persistent definition, when libvirt
    # kept it apart), else <domain>; None when it holds no definition
    sizes: tuple[int, int, int, int] | None = None


def parse_snapshot(text: str) -> SnapshotDesc:
    root = ET.fromstring(text)
    state = _text(root.find("state"), "shutoff")
    memory_el = root.find("memory")
    memory_kind = memory_el.get("snapshot", "") if memory_el is not None else ""
    memory = memory_kind in ("internal", "external") or \
        (not memory_kind and state in MEMORY_STATES)
    kinds = {d.get("snapshot", "") for d in root.findall("disks/disk")} - {"", "no"}
    location = "external" if "external" in kinds or memory_kind == "external" else "internal"
    parent = root.find("parent/name")
    defined = root.find("inactiveDomain")
    if defined is None:
        defined = root.find("domain")
    return SnapshotDesc(
        name=_text(root.find("name")),
        state=state,
        created=int(_text(root.find("creationTime"), "0")),
        memory=memory,
        location=location,
        description=_text(root.find("description")),
        parent=_text(parent) if parent is not None else None,
        disks=_domain_disks(root.find("domain")),
        sizes=domain_sizes(defined) if defined is not None else None,
    )


def _domain_disks(domain) -> tuple[tuple[str, str], ...]:
    """(target, file) of the disks (not CD-ROMs) of the snapshot's domain definition."""
    out = []
    for disk in domain.findall("devices/disk[@device='disk']") if domain is not None else []:
        target, source = disk.find("target"), disk.find("source")
        if target is not None and source is not None and source.get("file"):
            out.append((target.get("dev", ""), source.get("file")))
    return tuple(out)
