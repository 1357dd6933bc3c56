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
from .storage import _lookup_pool, lookup_volume
from .errors import (AlreadyExists, InvalidState, PoolFull, PoolNotFound, VolumeNotFound,
                     translate)

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


def attach_disk(conn: libvirt.virConnect, uuid: str, path: str, target: str,
                running: bool | None = None) -> bool:
    """Attach the qcow2 volume at ``path`` as virtio disk ``target``: hot-plugged into a
    running domain and kept in its definition, or added to a stopped domain's
    definition. Returns whether it was plugged live. ``running``: what the caller
    believes (True: the hot-plug is tried at once, and the domain's state asked only
    when it is refused; otherwise asked first). Raises AlreadyExists when the target
    is taken, VirtError when the hypervisor (or the guest) refuses."""
    dom = _lookup(conn, uuid)
    try:
        if running or dom.isActive():  # libvirt refuses a target the domain has
            try:
                dom.attachDeviceFlags(xml.build_disk(path, target), LIVE | CONFIG)
            except libvirt.libvirtError:
                if running and not dom.isActive():   # it had stopped after all
                    return _define_with(conn, dom, path, target)
                places = _places(dom)
                if places.live.get(target) != path or target in places.config:
                    raise
                # still in the running guest (a detach it never let go of): back into
                # the definition only
                conn.defineXML(xml.with_disk(dom.XMLDesc(INACTIVE_SECURE), path, target))
            return True
        return _define_with(conn, dom, path, target)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None


def _define_with(conn: libvirt.virConnect, dom: libvirt.virDomain, path: str,
                 target: str) -> bool:
    """The disk into a stopped domain's definition. Returns False (not plugged live)."""
    text = dom.XMLDesc(INACTIVE_SECURE)
    if target in {d.target for d in xml.parse_disks(text)}:
        raise AlreadyExists(f"the VM already has a disk {target}")
    conn.defineXML(xml.with_disk(text, path, target))
    return False


def new_data_volume(conn: libvirt.virConnect, pool_name: str, name: str,
                    capacity: int) -> str:
    """A new blank qcow2 volume ``name`` of ``capacity`` bytes in the pool, for a data
    disk: not overcommitted (PoolFull when the pool has less room; nothing made).
    Returns its file."""
    pool = _lookup_pool(conn, pool_name)
    try:
        free = int(pool.info()[3])
        if capacity > free:
            raise PoolFull(free, capacity)
        return pool.createXML(xml.build_blank_volume(name, capacity), 0).path()
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
        return not _wait_gone(dom, {target: places.live[target]}, wait)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None


def disk_places(conn: libvirt.virConnect, uuid: str) -> DiskPlaces:
    """Where the domain has its disks (definition, and live when it runs)."""
    dom = _lookup(conn, uuid)
    try:
        return _places(dom)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None


@dataclass(frozen=True)
class DataDisks:
    """The data disks LouCloud's records give a domain: ``wanted`` {target: path} (the
    attached ones), and ``known``, the path of every disk of its records (the system
    disk and the detached ones too): a disk at a path LouCloud does not know is left
    alone."""
    wanted: dict[str, str]
    known: frozenset[str]


@dataclass(frozen=True)
class DiskChanges:
    """What ``keep_disks`` changed, by target."""
    attached: tuple[str, ...] = ()       # back in the definition (and live when it runs)
    at_next_start: tuple[str, ...] = ()  # in the definition; the running domain refused it
    detached: tuple[str, ...] = ()       # out of the definition (and of the running guest)
    held: tuple[str, ...] = ()           # out of the definition; the guest has not let go
    refused: tuple[str, ...] = ()        # its target is taken by a disk LouCloud does not know

    def __bool__(self) -> bool:
        return any((self.attached, self.at_next_start, self.detached, self.held,
                    self.refused))


def keep_disks(conn: libvirt.virConnect, dom: libvirt.virDomain, disks: DataDisks,
               wait: float = 5.0) -> DiskChanges:
    """Give the domain the data disks of ``disks`` (after a snapshot's revert put back
    the definition of its moment): each wanted disk in the definition, and plugged into
    the running domain; each known disk not wanted (at that target) out of them. The
    running guest is asked to let go of a disk and waited for at most ``wait`` seconds."""
    text = dom.XMLDesc(INACTIVE_SECURE)
    config = {d.target: d.path for d in xml.parse_disks(text)}
    attached, later, detached, held, refused = [], [], [], [], []
    for target, path in config.items():
        if path in disks.known and disks.wanted.get(target) != path:
            text, _found = xml.without_disk(text, target)
            detached.append(target)
    for target, path in sorted(disks.wanted.items()):
        if config.get(target) == path:
            continue
        if target in config and config[target] not in disks.known:
            refused.append(target)
            continue
        text = xml.with_disk(text, path, target)
        attached.append(target)
    if attached or detached:
        conn.defineXML(text)
    if dom.isActive():
        live = {d.target: d.path for d in xml.parse_disks(dom.XMLDesc(0))}
        asked = []
        for target, path in live.items():
            if path in disks.known and disks.wanted.get(target) != path:
                try:
                    dom.detachDeviceFlags(xml.build_disk(path, target), LIVE)
                except libvirt.libvirtError:
                    pass
                asked.append(target)
        still = _wait_gone(dom, {t: live[t] for t in asked}, wait) if asked else set()
        for target in asked:
            if target in detached:
                detached.remove(target)
            (held if target in still else detached).append(target)
        now = (_places(dom).live or {}) if asked else live
        for target, path in sorted(disks.wanted.items()):
            if target in refused or now.get(target) == path:
                continue
            try:
                dom.attachDeviceFlags(xml.build_disk(path, target), LIVE)
                if target not in attached:
                    attached.append(target)
            except libvirt.libvirtError:
                if target in attached:
                    attached.remove(target)
                later.append(target)
    return DiskChanges(tuple(attached), tuple(later), tuple(detached), tuple(held),
                       tuple(refused))


def _wait_gone(dom: libvirt.virDomain, disks: dict[str, str], wait: float) -> set[str]:
    """The targets of ``disks`` still in the running domain after at most ``wait``
    seconds (a live detach asks the guest; it lets go a moment later)."""
    deadline = time.monotonic() + wait
    while True:
        live = _places(dom).live or {}
        still = {t for t, path in disks.items() if live.get(t) == path}
        if not still or time.monotonic() >= deadline:
            return still
        time.sleep(0.25)


def volume_path(conn: libvirt.virConnect, pool_name: str, name: str) -> str:
    """The file of the pool's volume ``name``. Raises VolumeNotFound, PoolNotFound."""
    try:
        return lookup_volume(conn, pool_name, name).path()
    except libvirt.libvirtError as exc:
        raise translate(exc) from None


def grow_disk(conn: libvirt.virConnect, uuid: str, target: str, pool_name: str,
              volume_name: str, capacity: int) -> bool:
    """Give the disk ``capacity`` bytes: a running domain's disk through QEMU (the block
    device grows in the guest at once), a stopped one's volume directly. Returns
    whether it grew live. Raises InvalidState for a smaller size."""
    try:
        dom = _lookup(conn, uuid)
        vol = lookup_volume(conn, pool_name, volume_name)
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


def pool_room(conn: libvirt.virConnect, pool_name: str) -> int:
    """Bytes still free in the pool (as of libvirt's last look at it)."""
    try:
        return int(_lookup_pool(conn, pool_name).info()[3])
    except libvirt.libvirtError as exc:
        raise translate(exc) from None


def volume_sizes(conn: libvirt.virConnect, pool_name: str,
                 names: list[str]) -> dict[str, tuple[int, int]]:
    """(capacity, allocation) in bytes of these volumes of the pool (those it has)."""
    try:
        pool = _lookup_pool(conn, pool_name)
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
        pool = _lookup_pool(conn, pool_name)
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
        vol = lookup_volume(conn, pool_name, name)
        users = _users_of(conn, pool_name, vol.path())
        if users:
            raise InvalidState(f"{name} is in use by " + ", ".join(users))
        vol.delete(0)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None

