"""A domain's disks (issue 14): attach a volume as a data disk (hot-plugged into a
running domain, into the definition of a stopped one), detach it, grow it; and
LouCloud's pool as a whole: every volume with its sizes, the room left, a volume
deleted only when no domain and no other volume uses it."""
from __future__ import annotations

import time
from dataclasses import dataclass

import libvirt

from . import xml
from .domains import _lookup
from .errors import AlreadyExists, InvalidState, PoolNotFound, VolumeNotFound, translate

LIVE, CONFIG = libvirt.VIR_DOMAIN_AFFECT_LIVE, libvirt.VIR_DOMAIN_AFFECT_CONFIG
INACTIVE_SECURE = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE


@dataclass(frozen=True)
class PoolVolume:
    name: str
    path: str
    format: str
    capacity: int       # bytes the guest sees
    allocation: int     # bytes the file holds on the host
    backing_path: str | None = None


@dataclass(frozen=True)
class DiskPlaces:
    """Where a domain has its disks: target -> file, in the definition and (running)
    in the live domain (None when it does not run)."""
    config: dict[str, str]
    live: dict[str, str] | None


def _places(dom: libvirt.virDomain) -> DiskPlaces:
    config = {d.target: d.path for d in xml.parse_disks(dom.XMLDesc(INACTIVE_SECURE))}
    live = {d.target: d.path for d in xml.parse_disks(dom.XMLDesc(0))} \
        if dom.isActive() else None
    return DiskPlaces(config, live)


def attach_disk(conn: libvirt.virConnect, uuid: str, path: str, target: str) -> bool:
    """Attach the qcow2 volume at ``path`` as virtio disk ``target``: hot-plugged into a
    running domain and kept in its definition, or added to a stopped domain's
    definition. Returns whether it was plugged live. Raises AlreadyExists when the
    target is taken, VirtError when the hypervisor (or the guest) refuses."""
    dom = _lookup(conn, uuid)
    try:
        if dom.isActive():  # libvirt refuses a target the domain has (live or defined)
            dom.attachDeviceFlags(xml.build_disk(path, target), LIVE | CONFIG)
            return True
        text = dom.XMLDesc(INACTIVE_SECURE)
        if target in {d.target for d in xml.parse_disks(text)}:
            raise AlreadyExists(f"the VM already has a disk {target}")
        conn.defineXML(xml.with_disk(text, path, target))
        return False
    except libvirt.libvirtError as exc:
        raise translate(exc) from None


def detach_disk(conn: libvirt.virConnect, uuid: str, target: str, wait: float = 10.0) -> bool:
    """Take disk ``target`` out of the domain: out of its definition, and out of the
    running domain (the guest releases it: waited for at most ``wait`` seconds).
    Returns False when the running guest still holds it (it is gone from the
    definition: at the latest at the next boot). A disk it does not have is detached
    already (True)."""
    dom = _lookup(conn, uuid)
    try:
        places = _places(dom)
        in_live = places.live is not None and target in places.live
        if in_live:
            flags = LIVE | (CONFIG if target in places.config else 0)
            dom.detachDeviceFlags(xml.build_disk(places.live[target], target), flags)
        elif target in places.config:
            text, _found = xml.without_disk(dom.XMLDesc(INACTIVE_SECURE), target)
            conn.defineXML(text)
        if not in_live:
            return True
        deadline = time.monotonic() + wait
        while True:  # a live detach asks the guest; it lets go a moment later
            live = _places(dom).live
            if live is None or target not in live:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.25)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None


def grow_disk(conn: libvirt.virConnect, uuid: str, target: str, pool_name: str,
              volume_name: str, capacity: int) -> bool:
    """Give the disk ``capacity`` bytes: a running domain's disk through QEMU (the block
    device grows in the guest at once), a stopped one's volume directly. Returns
    whether it grew live. Raises InvalidState for a smaller size."""
    try:
        dom = _lookup(conn, uuid)
        vol = _volume(conn, pool_name, volume_name)
        _kind, current, _alloc = vol.info()
        if capacity < current:
            raise InvalidState(f"the disk has {current} bytes; it cannot shrink")
        places = _places(dom)
        if places.live is not None and target in places.live:
            dom.blockResize(target, capacity, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
            return True
        if capacity > current:
            vol.resize(capacity, 0)
        return False
    except libvirt.libvirtError as exc:
        raise translate(exc) from None


def _pool(conn: libvirt.virConnect, pool_name: str) -> libvirt.virStoragePool:
    try:
        return conn.storagePoolLookupByName(pool_name)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None


def _volume(conn, pool_name: str, name: str) -> libvirt.virStorageVol:
    try:
        return _pool(conn, pool_name).storageVolLookupByName(name)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None


def pool_room(conn: libvirt.virConnect, pool_name: str) -> int:
    """Bytes still free in the pool (as of libvirt's last look at it)."""
    try:
        return int(_pool(conn, pool_name).info()[3])
    except libvirt.libvirtError as exc:
        raise translate(exc) from None


def volume_sizes(conn: libvirt.virConnect, pool_name: str,
                 names: list[str]) -> dict[str, tuple[int, int]]:
    """(capacity, allocation) in bytes of these volumes of the pool (those it has)."""
    try:
        pool = _pool(conn, pool_name)
    except PoolNotFound:
        return {}
    out = {}
    for name in names:
        try:
            _kind, capacity, allocation = pool.storageVolLookupByName(name).info()
        except libvirt.libvirtError as exc:
            if isinstance(translate(exc), VolumeNotFound):
                continue
            raise translate(exc) from None
        out[name] = (int(capacity), int(allocation))
    return out


def pool_volumes(conn: libvirt.virConnect, pool_name: str) -> list[PoolVolume]:
    """Every volume of the pool, looked at afresh (the pool is refreshed first, so that
    files left outside libvirt are listed too). No pool: none."""
    try:
        pool = _pool(conn, pool_name)
    except PoolNotFound:
        return []
    try:
        try:
            pool.refresh(0)
        except libvirt.libvirtError:
            pass  # busy (a volume being written): the list as libvirt knows it
        out = []
        for vol in pool.listAllVolumes(0):
            desc = xml.parse_volume(vol.XMLDesc(0))
            out.append(PoolVolume(desc.name, desc.path, desc.format or "raw", desc.capacity,
                                  desc.allocation, desc.backing_path))
        return sorted(out, key=lambda v: v.name)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None


def _users_of(conn: libvirt.virConnect, pool_name: str, path: str) -> list[str]:
    """Who uses the file at ``path``: domains that have it (defined or live), and
    volumes of the pool on top of it."""
    users = []
    for dom in conn.listAllDomains(0):
        texts = [dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)]
        if dom.isActive():
            texts.append(dom.XMLDesc(0))
        sources = {d.path for text in texts for d in xml.parse_disks(text)} | \
            {f for text in texts for f in xml.parse_domain(text).cdroms.values()}
        if path in sources:
            users.append(f"domain {dom.name()}")
    for vol in pool_volumes(conn, pool_name):
        if vol.backing_path == path:
            users.append(f"volume {vol.name} (on top of it)")
    return users


def delete_unused(conn: libvirt.virConnect, pool_name: str, name: str) -> None:
    """Delete the volume unless a domain of the host or another volume uses it.
    Raises InvalidState naming them, VolumeNotFound."""
    try:
        vol = _volume(conn, pool_name, name)
        users = _users_of(conn, pool_name, vol.path())
        if users:
            raise InvalidState(f"{name} is in use by " + ", ".join(users))
        vol.delete(0)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None

