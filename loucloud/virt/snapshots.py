"""Snapshots of a domain, its saved memory state (libvirt's managed save), and copies
of a VM's system volume (a clone).

LouCloud's disks are qcow2 overlays in a directory pool, and libvirt 9.0 with QEMU 7.2
reverts only *internal* snapshots (external revert came with libvirt 9.9): so every
snapshot is internal, inside the overlay itself. A running or paused domain's snapshot
holds its memory and devices too (a full system checkpoint, QEMU's savevm: the guest
pauses while it is written); a shut-off domain's holds its disks only (qemu-img). A
disk-only snapshot of a running domain would have to be external: refused."""
from __future__ import annotations

from dataclasses import dataclass

import libvirt

from . import xml
from .blockdevs import DataDisks, DiskChanges, keep_disks
from .domains import PAUSED, RUNNING, SHUTOFF, _lookup, state_name
from .errors import AlreadyExists, InvalidState, NotSupported, VirtError, translate
from .sizing import Sizes
from .storage import Volume, _lookup_pool
from .xml.snapshot import build_snapshot, parse_snapshot


class SnapshotNotFound(VirtError):
    """The domain has no snapshot of that name."""


@dataclass(frozen=True)
class SnapshotInfo:
    name: str
    created: int            # epoch seconds, as libvirt recorded it
    memory: bool            # with the running machine (memory and devices)
    state: str              # the domain's state when it was taken (libvirt's word)
    location: str           # internal (LouCloud's) or external (made outside it)
    size: int | None = None  # what the disks grew by when it was taken (None: unknown)


def _info(snap: libvirt.virDomainSnapshot, size: int | None = None) -> SnapshotInfo:
    desc = parse_snapshot(snap.getXMLDesc(0))
    return SnapshotInfo(desc.name, desc.created, desc.memory, desc.state, desc.location,
                        size)


def _find(dom: libvirt.virDomain, name: str) -> libvirt.virDomainSnapshot | None:
    try:
        return dom.snapshotLookupByName(name, 0)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT:
            return None
        raise translate(exc) from None


def _snapshot(dom: libvirt.virDomain, name: str) -> libvirt.virDomainSnapshot:
    snap = _find(dom, name)
    if snap is None:
        raise SnapshotNotFound(f"there is no snapshot named {name}")
    return snap



def memory_walk(conn: libvirt.virConnect, uuid: str,
                snapshot: str | None = None) -> tuple[int, int]:
    """What a verb over the domain's whole memory walks: its <memory> in MiB (the
    running domain's, room included: a memory snapshot writes all of it), or the
    ``snapshot``'s when that is larger (a revert reads it back), and how many snapshots
    it has."""
    dom = _lookup(conn, uuid)
    try:
        memory_mib, count = dom.maxMemory() // 1024, dom.snapshotNum(0)
        snap = _find(dom, snapshot) if snapshot else None
        sizes = parse_snapshot(snap.getXMLDesc(0)).sizes if snap is not None else None
    except libvirt.libvirtError as exc:
        raise translate(exc) from None
    return max(memory_mib, sizes[3] if sizes else 0), count


def snapshot_sizes(conn: libvirt.virConnect, uuid: str, name: str) -> Sizes | None:
    """The vCPUs and memory of the definition a revert to the snapshot puts back (None:
    the snapshot holds no definition). Raises SnapshotNotFound."""
    snap = _snapshot(_lookup(conn, uuid), name)
    try:
        sizes = parse_snapshot(snap.getXMLDesc(0)).sizes
    except libvirt.libvirtError as exc:
        raise translate(exc) from None
    return Sizes(*sizes) if sizes is not None else None


def list_snapshots(conn: libvirt.virConnect, uuid: str) -> list[SnapshotInfo]:
    """Every snapshot libvirt keeps of the domain, oldest first."""
    dom = _lookup(conn, uuid)
    try:
        found = [_info(s) for s in dom.listAllSnapshots(0)]
    except libvirt.libvirtError as exc:
        raise translate(exc) from None
    return sorted(found, key=lambda s: (s.created, s.name))


def _allocation(conn: libvirt.virConnect, dom: libvirt.virDomain) -> int | None:
    """Bytes the domain's disk files take on the host now (None: cannot tell)."""
    total = 0
    try:
        for path in xml.parse_domain(dom.XMLDesc(0)).disk_paths:
            total += conn.storageVolLookupByPath(path).info()[2]
    except libvirt.libvirtError:
        return None
    return total


def create_snapshot(conn: libvirt.virConnect, uuid: str, name: str,
                    memory: bool) -> SnapshotInfo:
    """Take the internal snapshot ``name``: with ``memory`` of a running or paused
    domain, else (disk only) of a shut-off one. Raises AlreadyExists, InvalidState
    (the state does not fit, or the domain holds a saved memory state)."""
    dom = _lookup(conn, uuid)
    state = state_name(dom.state()[0])
    if memory and state not in (RUNNING, PAUSED):
        raise InvalidState(f"the VM is {state}: there is no running machine to save; "
                           "take a disk-only snapshot")
    if not memory and state != SHUTOFF:
        raise InvalidState(f"the VM is {state}: a disk-only snapshot is taken of a shut-off "
                           "VM (of a running one, take it with its memory)")
    if state == SHUTOFF and _has_saved(dom):
        raise InvalidState("it holds a saved memory state: start it (or discard the state) "
                           "first")
    if _find(dom, name) is not None:
        raise AlreadyExists(f"there is already a snapshot named {name}")
    before = _allocation(conn, dom)
    try:
        snap = dom.snapshotCreateXML(build_snapshot(name), 0)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None
    after = _allocation(conn, dom) if before is not None else None
    grown = after - before if after is not None and before is not None else 0
    return _info(snap, grown if grown > 0 else None)


@dataclass(frozen=True)
class Reverted:
    state: str                  # the domain's state after
    disks: DiskChanges          # what was done so that it keeps LouCloud's data disks


def _gone(conn: libvirt.virConnect, desc, disks: DataDisks) -> list[str]:
    """The snapshot's disks whose volume is gone since (deleted): in the directory of
    the domain's disks, unknown to LouCloud's records, and no volume there now."""
    dirs = {path.rsplit("/", 1)[0] for path in disks.known}
    gone = []
    for target, path in desc.disks:
        if path in disks.known or path.rsplit("/", 1)[0] not in dirs:
            continue
        try:
            conn.storageVolLookupByPath(path)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
                gone.append(target)
    return gone


def revert_snapshot(conn: libvirt.virConnect, uuid: str, name: str, start_after: bool,
                    disks: DataDisks | None = None) -> Reverted:
    """Put the domain back to the snapshot: to a memory snapshot, running (or paused)
    in its state; to a disk-only one, its disks as they were, the domain shut off, or
    booted from them with ``start_after``. libvirt puts back the definition of the
    snapshot's moment; with ``disks`` the domain then keeps the data disks LouCloud
    says it has now (blockdevs.keep_disks: attached since, attached again; detached
    since, detached again). Raises SnapshotNotFound, InvalidState (a saved memory
    state, or a disk of the snapshot deleted since), NotSupported (external)."""
    dom = _lookup(conn, uuid)
    snap = _snapshot(dom, name)
    desc = parse_snapshot(snap.getXMLDesc(0))
    if desc.location != "internal":
        raise NotSupported(f"{name} is an external snapshot, which libvirt cannot revert "
                           "here")
    if not dom.isActive() and _has_saved(dom):
        raise InvalidState("it holds a saved memory state: start it (or discard the state) "
                           "first")
    gone = _gone(conn, desc, disks) if disks is not None else []
    if gone:
        raise InvalidState(f"snapshot {name} holds the disk {', '.join(gone)}, deleted "
                           "since: it cannot come back (delete the snapshot)")
    # A memory snapshot of a running domain whose devices changed since (a disk
    # attached or detached) is restored in a new QEMU process: FORCE says so.
    flags = libvirt.VIR_DOMAIN_SNAPSHOT_REVERT_FORCE if desc.memory and dom.isActive() else 0
    try:
        dom.revertToSnapshot(snap, flags)
        changes = keep_disks(conn, dom, disks) if disks is not None else DiskChanges()
        # Booted here rather than with REVERT_RUNNING, which the test driver ignores.
        if start_after and not desc.memory and not dom.isActive():
            dom.create()
        return Reverted(state_name(dom.state()[0]), changes)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None


def delete_snapshot(conn: libvirt.virConnect, uuid: str, name: str) -> bool:
    """Delete the snapshot and what it holds in the disk (its children stay, on its
    parent). Returns whether there was one."""
    dom = _lookup(conn, uuid)
    snap = _find(dom, name)
    if snap is None:
        return False
    try:
        snap.delete(0)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None
    return True


def drop_snapshots(conn: libvirt.virConnect, uuid: str) -> int:
    """Delete every snapshot of the shut-off domain, with what it holds in its disks
    (data disks keep nothing of them); one whose data cannot be deleted is at least
    forgotten by libvirt (its disk is about to be replaced: a rebuild). Returns how
    many there were."""
    dom = _lookup(conn, uuid)
    try:
        snaps = dom.listAllSnapshots(0)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None
    for snap in reversed(snaps):
        try:
            snap.delete(0)
        except libvirt.libvirtError:
            try:
                snap.delete(libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY)
            except libvirt.libvirtError as exc:
                err = translate(exc)
                if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT:
                    raise err from None
    return len(snaps)


# -- the saved memory state (managed save) ---------------------------------------------
def _has_saved(dom: libvirt.virDomain) -> bool:
    try:
        return dom.hasManagedSaveImage(0) == 1
    except libvirt.libvirtError as exc:
        raise translate(exc) from None


def has_saved_state(conn: libvirt.virConnect, uuid: str) -> bool:
    """Whether the shut-off domain holds a saved memory state (its next start resumes)."""
    return _has_saved(_lookup(conn, uuid))


def discard_saved_state(conn: libvirt.virConnect, uuid: str) -> bool:
    """Delete the domain's saved memory state: its next start boots afresh. Returns
    whether there was one."""
    dom = _lookup(conn, uuid)
    if not _has_saved(dom):
        return False
    try:
        dom.managedSaveRemove(0)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None
    return True


# -- copies of a system volume ----------------------------------------------------------
def clone_volume(conn: libvirt.virConnect, pool_name: str, source: str, name: str,
                 capacity: int, backing_path: str | None,
                 backing_format: str | None) -> tuple[Volume, bool]:
    """A copy ``name`` of the pool's volume ``source`` (its current state: internal
    snapshots stay behind), through libvirt (virStorageVolCreateXMLFrom: qemu-img
    convert on the host). With a backing image, the copy is an overlay on it again
    (only what differs from the image is copied). Returns the volume and whether it
    kept the backing image (False: a flattened, standalone copy). Raises
    AlreadyExists, VolumeNotFound, NoSpace; nothing is left when it fails."""
    pool = _lookup_pool(conn, pool_name)
    try:
        src = pool.storageVolLookupByName(source)
    except libvirt.libvirtError as exc:
        raise translate(exc) from None
    if backing_path:
        spec = xml.build_overlay_volume(name, capacity, backing_path, backing_format or "raw")
    else:
        spec = xml.build_blank_volume(name, capacity)
    try:
        vol = pool.createXMLFrom(spec, src, 0)
    except libvirt.libvirtError as exc:
        err = translate(exc)
        if not isinstance(err, AlreadyExists):
            try:  # a copy that failed half-way may have left its file
                pool.refresh(0)
                pool.storageVolLookupByName(name).delete(0)
            except libvirt.libvirtError:
                pass
        raise err from None
    desc = xml.parse_volume(vol.XMLDesc(0))
    return Volume(vol.name(), vol.path()), bool(desc.backing_path)
