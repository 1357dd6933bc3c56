"""A VM's disks (issue 14): add a blank data disk (a qcow2 volume in LouCloud's pool on
the VM's host, hot-plugged into a running VM as the next free virtio target, or put
into a stopped VM's definition), detach one, attach a detached one again, delete one,
grow one; and what the VM
page shows of them (sizes and allocations, asked from the host after the page is
shown).

Every disk counts in its owner's quota, attached or not (models/disks.py); an added
or grown disk is reserved atomically as at create (resize.reserve). The system disk
(vda) can grow but goes only with its VM. A step the host refuses leaves nothing: the
new volume is deleted again, the row and the quota as before."""
from __future__ import annotations

import logging
import secrets

from ...extensions import db
from ...models import VM, Disk, Leftover
from ...virt import AlreadyExists, DomainNotFound, InvalidState, VirtError, VolumeNotFound
from ...virt.driver import Hypervisor, next_target
from .. import Conflict, FieldError, NotFound, ServiceError, leftovers, transaction
from ..hypervisors import hypervisor
from ..settings import get_settings
from .create import GIB, QuotaExceeded
from .lifecycle import _end, _put_back, refusal
from .resize import reserve
from .snapshots import begin_unsaved

log = logging.getLogger(__name__)

MAX_DISK_GIB = 64 * 1024


def check_size(value, field: str = "size_gib") -> int:
    """A disk size in GiB, a whole number from 1 to 65536. Raises FieldError."""
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise FieldError("Give the size in GiB as a whole number.", field) from None
    if not 1 <= size <= MAX_DISK_GIB:
        raise FieldError(f"Give a size from 1 to {MAX_DISK_GIB} GiB.", field)
    return size


def disk_of(vm: VM, target: str) -> Disk:
    """The VM's disk at ``target`` (vda, vdb...). Raises NotFound."""
    for disk in vm.disks:
        if disk.target == (target or "").strip():
            return disk
    raise NotFound(f"{vm.name} has no disk {str(target)[:16]!r}.")


def _refusal(vm: VM, exc: VirtError, doing: str) -> ServiceError:
    return refusal(vm, exc, f"{doing} failed on {vm.host.name}: {exc}",
                   conflict=f"{doing} refused: {exc}.", kinds=(InvalidState, AlreadyExists),
                   unavailable=f"{vm.host.name} does not answer: {exc}. {doing} did not "
                               "happen.")


def _check_room(vm: VM, hv: Hypervisor, pool_name: str, add_gib: int, doing: str) -> None:
    """Refuse (Conflict) a disk that would not fit in what is free in the pool: data
    disks are not overcommitted."""
    free = hv.pool_room(pool_name)
    if add_gib * GIB > free:
        raise Conflict(f"{doing} refused: LouCloud's storage pool on {vm.host.name} has "
                       f"{free / GIB:.1f} GiB free, not enough for {add_gib} GiB more.")


def _undo_volume(vm: VM, hv: Hypervisor, pool_name: str, name: str) -> None:
    try:
        hv.delete_volume(pool_name, name)
    except VirtError as exc:  # the host went away: removed when it answers again
        leftovers.remember(vm.host, Leftover.VOLUME, name, pool_name, str(exc))


@transaction
def add_disk(vm: VM, size_gib) -> str:
    """A new blank data disk of ``size_gib`` for the VM, attached as its next free
    target: live into a running VM, into a stopped VM's definition. Returns the message.
    Raises FieldError, QuotaExceeded, Conflict (busy, pool full, no free target, the
    guest refused), Unavailable, ServiceError; every failure leaves nothing."""
    size = check_size(size_gib)
    previous = begin_unsaved(vm, "attaching", "add a disk to")
    pool_name = get_settings().storage_pool
    hv = hypervisor(vm.host)
    try:
        _check_room(vm, hv, pool_name, size, f"A {size} GiB disk for {vm.name}")
    except VirtError as exc:
        _put_back(vm, previous)
        raise _refusal(vm, exc, "Adding a disk") from None
    except Conflict:
        _put_back(vm, previous)
        raise
    # The rows name every disk LouCloud gave the VM; a target taken on the host behind
    # LouCloud's back makes the attach refuse (AlreadyExists), and nothing is kept.
    target = next_target({d.target for d in vm.disks})
    if target is None:
        _put_back(vm, previous)
        raise Conflict(f"{vm.name} has every disk target up to vdz in use.")
    volume_name = f"lc-{vm.uuid}-{target}-{secrets.token_hex(3)}.qcow2"
    try:
        vm = reserve(vm, lambda row: row.disks.append(Disk(
            target=target, volume_name=volume_name, size_gib=size, system=False,
            attached=False)), disk_gib=size)
    except QuotaExceeded:
        _put_back(vm, previous)
        raise
    disk = disk_of(vm, target)
    try:
        volume = hv.create_blank(pool_name, volume_name, size * GIB)
        live = hv.attach_disk(vm.uuid, volume.path, target)
    except VirtError as exc:
        _undo_volume(vm, hv, pool_name, volume_name)
        db.session.delete(disk)
        db.session.commit()
        _put_back(vm, previous)
        log.warning("disk %s for %s not added: %s", target, vm.name, exc)
        raise _refusal(vm, exc, f"Adding a {size} GiB disk to {vm.name}") from None
    disk.volume_path, disk.attached = volume.path, True
    _end(vm)
    log.info("disk %s (%d GiB) added to %s (live: %s)", target, size, vm.name, live)
    if live:
        return f"A {size} GiB disk {target} was added to {vm.name} and plugged in: the " \
               f"guest sees it now as /dev/{target}."
    return f"A {size} GiB disk {target} was added to {vm.name}; the VM sees it as " \
           f"/dev/{target} at its next start."


def _detach(vm: VM, hv: Hypervisor, disk: Disk, doing: str, previous) -> bool:
    """Take the disk out of the domain and mark it detached. Returns False when the
    running guest has not let go of it: it is out of the definition (the record says
    detached, as the host's definition does), still plugged into the running guest
    until the guest lets go, at the latest until the VM stops."""
    try:
        released = hv.detach_disk(vm.uuid, disk.target)
    except VirtError as exc:
        _put_back(vm, previous)   # as it was: a VM in error keeps its error
        raise _refusal(vm, exc, doing) from None
    disk.attached = False
    db.session.commit()
    return released


def _held(vm: VM, disk: Disk) -> str:
    return (f"The guest of {vm.name} has not let go of {disk.target} yet (is it mounted "
            "or in use?). It is out of the VM's definition and marked detached; it leaves "
            "the running guest when the guest lets go of it, at the latest when the VM "
            "stops.")


@transaction
def detach_disk(vm: VM, target: str) -> str:
    """Take a data disk out of the VM (live and definition); its volume is kept and
    still counts in the quota. A running guest that does not let go keeps it plugged in
    until it does (the answer says so; the disk is detached from the definition).
    Raises NotFound (no such disk), Conflict (the system disk, detached already, busy),
    Unavailable, ServiceError."""
    disk = disk_of(vm, target)
    if disk.system:
        raise Conflict(f"{disk.target} is the system disk of {vm.name}: it cannot be "
                       "detached (it goes with the VM).")
    if not disk.attached:
        raise Conflict(f"{disk.target} of {vm.name} is detached already.")
    previous = begin_unsaved(vm, "detaching", "detach a disk of")
    released = _detach(vm, hypervisor(vm.host), disk, f"Detaching {disk.target} from "
                       f"{vm.name}", previous)
    _end(vm)
    if not released:
        return _held(vm, disk) + " Its volume is kept."
    return f"{disk.target} was detached from {vm.name}. Its volume is kept, and counts in " \
           "the quota, until you delete it."


@transaction
def attach_disk(vm: VM, target: str) -> str:
    """Attach a detached data disk again: live into a running VM (hot-plug), into a
    stopped VM's definition; at its own target, or the next free one when that is
    taken. Raises NotFound (no such disk), Conflict (the system disk, attached already,
    busy, its volume gone, no free target, the guest refused), Unavailable,
    ServiceError."""
    disk = disk_of(vm, target)
    if disk.system:
        raise Conflict(f"{disk.target} is the system disk of {vm.name}: it is always "
                       "attached.")
    if disk.attached:
        raise Conflict(f"{disk.target} of {vm.name} is attached already.")
    previous = begin_unsaved(vm, "attaching", "attach a disk to")
    hv = hypervisor(vm.host)
    doing = f"Attaching {disk.target} to {vm.name}"
    try:
        path = hv.volume_path(get_settings().storage_pool, disk.volume_name)
        places = hv.disk_places(vm.uuid)
    except VolumeNotFound:
        _put_back(vm, previous)
        raise Conflict(f"The volume of {disk.target} ({disk.volume_name}) is missing on "
                       f"{vm.host.name}: it cannot be attached; delete the disk.") from None
    except VirtError as exc:
        _put_back(vm, previous)
        raise _refusal(vm, exc, doing) from None
    live = places.live or {}
    held = next((t for t, p in live.items() if p == path and t not in places.config), None)
    taken = set(places.config) | set(live)
    if held is not None:
        new = held
    elif disk.target not in taken:
        new = disk.target
    else:
        new = next_target(taken | {d.target for d in vm.disks})
    if new is None:
        _put_back(vm, previous)
        raise Conflict(f"{vm.name} has every disk target up to vdz in use.")
    try:
        plugged = hv.attach_disk(vm.uuid, path, new)
    except VirtError as exc:
        _put_back(vm, previous)
        raise _refusal(vm, exc, doing) from None
    old = disk.target
    disk.target, disk.volume_path, disk.attached = new, path, True
    _end(vm)
    log.info("disk %s of %s attached again as %s (live: %s)", old, vm.name, new, plugged)
    moved = f" as {new} ({old} is taken)" if new != old else ""
    if held is not None:
        return f"{new} was still plugged into the running guest of {vm.name}; it is " \
               "attached again (back in its definition)."
    if plugged:
        return f"{old} was attached to {vm.name} again{moved} and plugged in: the guest " \
               f"sees it now as /dev/{new}."
    return f"{old} was attached to {vm.name} again{moved}; the VM sees it as /dev/{new} " \
           "at its next start."


@transaction
def delete_disk(vm: VM, target: str) -> str:
    """Delete a data disk: detached first when it is attached, then its volume and row
    (its quota freed). Raises NotFound, Conflict (the system disk, busy, the guest holds
    it), Unavailable, ServiceError."""
    disk = disk_of(vm, target)
    if disk.system:
        raise Conflict(f"{disk.target} is the system disk of {vm.name}: it goes only with "
                       "the VM (delete the VM).")
    previous = begin_unsaved(vm, "detaching", "delete a disk of")
    hv = hypervisor(vm.host)
    doing = f"Deleting {disk.target} of {vm.name}"
    # detached earlier, a running guest may still hold it (it had not let go)
    released = _detach(vm, hv, disk, doing, previous) if disk.attached else None
    try:
        if released is None:
            released = not disk.volume_path or disk.volume_path not in \
                (hv.disk_places(vm.uuid).live or {}).values()
        if released:
            hv.delete_volume(get_settings().storage_pool, disk.volume_name)
    except VirtError as exc:
        _put_back(vm, previous)
        raise _refusal(vm, exc, doing + " (it is detached; its volume is kept)") from None
    if not released:
        _put_back(vm, previous)
        raise Conflict(_held(vm, disk) + " Its volume is kept: delete it once the guest "
                       "has let go of it.")
    name, size = disk.target, disk.size_gib
    db.session.delete(disk)
    _end(vm)
    log.info("disk %s of %s deleted", name, vm.name)
    return f"Disk {name} of {vm.name} was deleted; its {size} GiB are free in the quota."


@transaction
def grow_disk(vm: VM, target: str, size_gib) -> str:
    """Grow a disk (the system disk too) to ``size_gib``: the volume, and for a running
    VM the block device the guest sees, at once. Never smaller. Raises FieldError
    (bad size, shrinking), NotFound, QuotaExceeded, Conflict, Unavailable, ServiceError."""
    size = check_size(size_gib)
    disk = disk_of(vm, target)
    if size < disk.size_gib:
        raise FieldError(f"{disk.target} has {disk.size_gib} GiB and a disk cannot shrink: "
                         "give a larger size.", "size_gib")
    if size == disk.size_gib:
        raise FieldError(f"{disk.target} has {size} GiB already.", "size_gib")
    previous = begin_unsaved(vm, "resizing", "grow a disk of")
    pool_name = get_settings().storage_pool
    hv = hypervisor(vm.host)
    old, add = disk.size_gib, size - disk.size_gib
    doing = f"Growing {disk.target} of {vm.name}"
    try:
        _check_room(vm, hv, pool_name, add, doing)
    except VirtError as exc:
        _put_back(vm, previous)
        raise _refusal(vm, exc, doing) from None
    except Conflict:
        _put_back(vm, previous)
        raise
    disk_id = disk.id

    def apply(row: VM) -> None:
        grown = db.session.get(Disk, disk_id)
        grown.size_gib = size
        if grown.system:
            row.disk_gib = size

    try:
        vm = reserve(vm, apply, disk_gib=add)
    except QuotaExceeded:
        _put_back(vm, previous)
        raise
    disk = db.session.get(Disk, disk_id)
    try:
        live = hv.grow_disk(vm.uuid, disk.target, pool_name, disk.volume_name, size * GIB)
    except VirtError as exc:
        disk.size_gib = old
        if disk.system:
            vm.disk_gib = old
        _put_back(vm, previous)
        raise _refusal(vm, exc, doing) from None
    _end(vm)
    log.info("disk %s of %s grown to %d GiB (live: %s)", disk.target, vm.name, size, live)
    if live:
        return f"{disk.target} of {vm.name} now has {size} GiB; the guest sees the larger " \
               "disk now (grow its partition and file system to use it)."
    return f"{disk.target} of {vm.name} now has {size} GiB; the VM sees it at its next start."


def hardware(vm: VM) -> dict:
    """What only the host can tell of the VM's disks and sizes (the page asks after it
    is shown): each disk's size and allocation (said, and in bytes), whether a detached
    disk is still held by the running guest, and a resize waiting for the next boot.
    One call for the sizes and one per disk for the volumes (one more for a VM with a
    detached disk); {"error": ...} when the host cannot tell now."""
    hv = hypervisor(vm.host)
    try:
        sizes = hv.volume_sizes(get_settings().storage_pool, [d.volume_name for d in vm.disks])
        now = hv.sizes(vm.uuid)
        # a detached disk the running guest has not let go of yet
        live = set((hv.disk_places(vm.uuid).live or {}).values()) \
            if any(not d.attached for d in vm.disks) else set()
    except DomainNotFound:
        return {"error": f"The domain is missing on {vm.host.name}."}
    except VirtError as exc:
        return {"error": f"{vm.host.name} cannot tell now: {exc}"}
    disks = {}
    for d in vm.disks:
        capacity, allocation = sizes.get(d.volume_name, (None, None))
        disks[d.target] = {"capacity_gib": _gib(capacity), "allocation_gib": _gib(allocation),
                           "capacity_bytes": capacity, "allocation_bytes": allocation,
                           "found": capacity is not None,
                           "held": not d.attached and bool(d.volume_path) and
                           d.volume_path in live}
    pending = []
    if now.live_vcpus is not None and now.live_vcpus != now.vcpus:
        pending.append(f"{now.vcpus} vCPUs (now {now.live_vcpus})")
    # Memory waits for the next boot only past the running maximum: below it the balloon
    # takes the new size live (the live figure is what the guest's balloon gave back so
    # far, which lags, and is the maximum while the guest boots).
    if now.live_max_memory_mib is not None and now.memory_mib > now.live_max_memory_mib:
        pending.append(f"{now.memory_mib} MiB of memory (now at most "
                       f"{now.live_max_memory_mib} MiB)")
    return {"disks": disks,
            "pending": ("At its next boot: " + ", ".join(pending) + ".") if pending else "",
            "vcpus": now.live_vcpus if now.live_vcpus is not None else now.vcpus,
            "memory_mib": now.live_memory_mib if now.live_memory_mib is not None
            else now.memory_mib}


def _gib(value: int | None) -> str | None:
    if value is None:
        return None
    return f"{value / GIB:.2f} GiB" if value >= GIB / 100 or value == 0 else \
        f"{value / 1024 ** 2:.1f} MiB"
