"""A VM's disks (issue 14): add a blank data disk (a qcow2 volume in LouCloud's pool on
the VM's host, hot-plugged into a running VM as the next free virtio target, or put
into a stopped VM's definition), detach one, attach a detached one again, delete one,
grow one; and what the VM page shows of them (sizes and allocations, asked from the
host after the page is shown).

Every disk counts in its owner's quota, attached or not (models/disks.py), reserved
atomically as at create (create.lock_quota). The system disk (vda) can grow but goes
only with its VM. A step the host refuses leaves nothing: the new volume is deleted
again, the row and the quota as before."""
from __future__ import annotations

import logging
import secrets

from flask_babel import gettext as _

from ...extensions import db
from ...models import VM, Disk, Leftover
from ...virt import AlreadyExists, InvalidState, PoolFull, VirtError, VolumeNotFound
from ...virt.driver import Hypervisor, next_target
from .. import Conflict, FieldError, NotFound, ServiceError, leftovers, transaction
from ..hypervisors import hypervisor
from ..settings import get_settings
from .create import GIB, QuotaExceeded, lock_quota
from .lifecycle import _end, _put_back, busy, claim, refusal
from .resize import reserve
from .snapshots import begin_unsaved, unsaved
from .views import state_label

log = logging.getLogger(__name__)

MAX_DISK_GIB = 64 * 1024


def check_size(value, field: str = "size_gib") -> int:
    """A disk size in GiB, a whole number from 1 to 65536. Raises FieldError."""
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise FieldError(_("Give the size in GiB as a whole number."), field) from None
    if not 1 <= size <= MAX_DISK_GIB:
        raise FieldError(_("Give a size from 1 to %(max)s GiB.", max=MAX_DISK_GIB), field)
    return size


def disk_of(vm: VM, target: str) -> Disk:
    """The VM's disk at ``target`` (vda, vdb...). Raises NotFound."""
    for disk in vm.disks:
        if disk.target == (target or "").strip():
            return disk
    raise NotFound(_("%(name)s has no disk %(disk)s.", name=vm.name,
                     disk=repr(str(target)[:16])))


def _refusal(vm: VM, exc: VirtError, doing: str) -> ServiceError:
    """``doing``: what was being done, in the reader's language ("Adding a disk")."""
    return refusal(vm, exc, _("%(doing)s failed on %(host)s: %(error)s", doing=doing,
                              host=vm.host.name, error=exc),
                   conflict=_("%(doing)s refused: %(error)s.", doing=doing, error=exc),
                   kinds=(InvalidState, AlreadyExists),
                   unavailable=_("%(host)s does not answer: %(error)s. %(doing)s did not "
                                 "happen.", host=vm.host.name, error=exc, doing=doing))


def _check_room(vm: VM, hv: Hypervisor, pool_name: str, add_gib: int, doing: str) -> None:
    """Refuse a disk that would not fit in what is free in the pool: data disks are not
    overcommitted."""
    free = hv.pool_room(pool_name)
    if add_gib * GIB > free:
        raise _no_room(vm.host.name, free, add_gib, doing)


def _no_room(host_name: str, free: int, add_gib: int, doing: str) -> Conflict:
    return Conflict(_("%(doing)s refused: LouCloud's storage pool on %(host)s has %(free)s "
                      "GiB free, not enough for %(add)s GiB more.", doing=doing,
                      host=host_name, free=f"{free / GIB:.1f}", add=add_gib))


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
    guest refused), Unavailable, ServiceError; every failure leaves nothing. The host
    makes the volume while one transaction holds the quota (lock_quota), the busy mark
    (claim) and the row; then the attach; then the status."""
    size = check_size(size_gib)
    vm_id, name, uuid, host_name = vm.id, vm.name, vm.uuid, vm.host.name
    running = vm.live_state in ("running", "paused")
    pool_name = get_settings().storage_pool
    hv = hypervisor(vm.host)
    # The rows name every disk LouCloud gave the VM (read again under the lock); a target
    # taken on the host behind LouCloud's back makes the attach refuse (AlreadyExists).
    target = next_target({d.target for d in vm.disks})
    if target is None:
        raise Conflict(_("%(name)s has every disk target up to vdz in use.", name=name))
    volume_name = f"lc-{uuid}-{target}-{secrets.token_hex(3)}.qcow2"
    made = hv.start_data_volume(pool_name, volume_name, size * GIB)

    def unmake() -> None:
        try:
            made()
        except VirtError:    # PoolFull: nothing made; else deleted if it is there
            pass
        _undo_volume(vm, hv, pool_name, volume_name)

    try:
        lock_quota(vm.owner_id, disk_gib=size)   # QuotaExceeded: rolled back
        if (previous := claim(vm_id, "attaching")) is None:
            db.session.rollback()
            raise busy(vm)
        if target in set(db.session.execute(
                db.select(Disk.target).where(Disk.vm_id == vm_id)).scalars()):
            db.session.rollback()    # another add took it between the two looks
            raise Conflict(_("%(name)s is busy (%(status)s); try again in a moment.",
                             name=name, status=state_label("attaching")))
        disk = Disk(vm_id=vm_id, target=target, volume_name=volume_name, size_gib=size,
                    system=False, attached=False)
        db.session.add(disk)
        db.session.flush()
        disk_id = disk.id
        db.session.commit()
    except Exception:
        db.session.rollback()    # a failed write too: unmake may remember a leftover
        unmake()
        raise

    def undo(error: ServiceError) -> ServiceError:
        db.session.delete(disk)
        _put_back(vm, previous)
        return error

    if (refused := None if running else unsaved(vm, _("add a disk to %(name)s",
                                                      name=name))) is not None:
        unmake()
        raise undo(refused)
    try:
        path = made()
        live = hv.attach_disk(uuid, path, target, running)
    except PoolFull as exc:
        doing = _("A %(size)s GiB disk for %(name)s", size=size, name=name)
        raise undo(_no_room(host_name, exc.free, size, doing)) from None
    except VirtError as exc:
        _undo_volume(vm, hv, pool_name, volume_name)
        log.warning("disk %s for %s not added: %s", target, name, exc)
        raise undo(_refusal(vm, exc, _("Adding a %(size)s GiB disk to %(name)s", size=size,
                                       name=name))) from None
    db.session.execute(db.update(Disk).where(Disk.id == disk_id)
                       .values(volume_path=path, attached=True))
    _end(vm)
    log.info("disk %s (%d GiB) added to %s (live: %s)", target, size, name, live)
    if live:
        return _("A %(size)s GiB disk %(disk)s was added to %(name)s and plugged in: the "
                 "guest sees it now as /dev/%(disk)s.", size=size, disk=target, name=name)
    return _("A %(size)s GiB disk %(disk)s was added to %(name)s; the VM sees it as "
             "/dev/%(disk)s at its next start.", size=size, disk=target, name=name)


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
    return _("The guest of %(name)s has not let go of %(disk)s yet (is it mounted or in "
             "use?). It is out of the VM's definition and marked detached; it leaves the "
             "running guest when the guest lets go of it, at the latest when the VM stops.",
             name=vm.name, disk=disk.target)


@transaction
def detach_disk(vm: VM, target: str) -> str:
    """Take a data disk out of the VM (live and definition); its volume is kept and
    still counts in the quota. A running guest that does not let go keeps it plugged in
    until it does (the answer says so; the disk is detached from the definition).
    Raises NotFound (no such disk), Conflict (the system disk, detached already, busy),
    Unavailable, ServiceError."""
    disk = disk_of(vm, target)
    if disk.system:
        raise Conflict(_("%(disk)s is the system disk of %(name)s: it cannot be detached "
                         "(it goes with the VM).", disk=disk.target, name=vm.name))
    if not disk.attached:
        raise Conflict(_("%(disk)s of %(name)s is detached already.", disk=disk.target,
                         name=vm.name))
    previous = begin_unsaved(vm, "detaching", _("detach a disk of %(name)s", name=vm.name))
    released = _detach(vm, hypervisor(vm.host), disk, _(
        "Detaching %(disk)s from %(name)s", disk=disk.target, name=vm.name), previous)
    _end(vm)
    if not released:
        return _held(vm, disk) + " " + _("Its volume is kept.")
    return _("%(disk)s was detached from %(name)s. Its volume is kept, and counts in the "
             "quota, until you delete it.", disk=disk.target, name=vm.name)


@transaction
def attach_disk(vm: VM, target: str) -> str:
    """Attach a detached data disk again: live into a running VM (hot-plug), into a
    stopped VM's definition; at its own target, or the next free one when that is
    taken. Raises NotFound (no such disk), Conflict (the system disk, attached already,
    busy, its volume gone, no free target, the guest refused), Unavailable,
    ServiceError."""
    disk = disk_of(vm, target)
    if disk.system:
        raise Conflict(_("%(disk)s is the system disk of %(name)s: it is always attached.",
                         disk=disk.target, name=vm.name))
    if disk.attached:
        raise Conflict(_("%(disk)s of %(name)s is attached already.", disk=disk.target,
                         name=vm.name))
    previous = begin_unsaved(vm, "attaching", _("attach a disk to %(name)s", name=vm.name))
    hv = hypervisor(vm.host)
    doing = _("Attaching %(disk)s to %(name)s", disk=disk.target, name=vm.name)
    try:
        path = hv.volume_path(get_settings().storage_pool, disk.volume_name)
        places = hv.disk_places(vm.uuid)
    except VolumeNotFound:
        _put_back(vm, previous)
        raise Conflict(_("The volume of %(disk)s (%(volume)s) is missing on %(host)s: it "
                         "cannot be attached; delete the disk.", disk=disk.target,
                         volume=disk.volume_name, host=vm.host.name)) from None
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
        raise Conflict(_("%(name)s has every disk target up to vdz in use.", name=vm.name))
    try:
        plugged = hv.attach_disk(vm.uuid, path, new)
    except VirtError as exc:
        _put_back(vm, previous)
        raise _refusal(vm, exc, doing) from None
    old = disk.target
    disk.target, disk.volume_path, disk.attached = new, path, True
    _end(vm)
    log.info("disk %s of %s attached again as %s (live: %s)", old, vm.name, new, plugged)
    if held is not None:
        return _("%(disk)s was still plugged into the running guest of %(name)s; it is "
                 "attached again (back in its definition).", disk=new, name=vm.name)
    names = {"old": old, "new": new, "name": vm.name}
    if plugged and new != old:
        return _("%(old)s was attached to %(name)s again as %(new)s (%(old)s is taken) and "
                 "plugged in: the guest sees it now as /dev/%(new)s.", **names)
    if plugged:
        return _("%(old)s was attached to %(name)s again and plugged in: the guest sees it "
                 "now as /dev/%(new)s.", **names)
    if new != old:
        return _("%(old)s was attached to %(name)s again as %(new)s (%(old)s is taken); the "
                 "VM sees it as /dev/%(new)s at its next start.", **names)
    return _("%(old)s was attached to %(name)s again; the VM sees it as /dev/%(new)s at its "
             "next start.", **names)


@transaction
def delete_disk(vm: VM, target: str) -> str:
    """Delete a data disk: detached first when it is attached, then its volume and row
    (its quota freed). Raises NotFound, Conflict (the system disk, busy, the guest holds
    it), Unavailable, ServiceError."""
    disk = disk_of(vm, target)
    if disk.system:
        raise Conflict(_("%(disk)s is the system disk of %(name)s: it goes only with the "
                         "VM (delete the VM).", disk=disk.target, name=vm.name))
    previous = begin_unsaved(vm, "detaching", _("delete a disk of %(name)s", name=vm.name))
    hv = hypervisor(vm.host)
    doing = _("Deleting %(disk)s of %(name)s", disk=disk.target, name=vm.name)
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
        raise _refusal(vm, exc, _("Deleting %(disk)s of %(name)s (it is detached; its "
                                  "volume is kept)", disk=disk.target,
                                  name=vm.name)) from None
    if not released:
        _put_back(vm, previous)
        raise Conflict(_held(vm, disk) + " " + _("Its volume is kept: delete it once the "
                                                 "guest has let go of it."))
    name, size = disk.target, disk.size_gib
    db.session.delete(disk)
    _end(vm)
    log.info("disk %s of %s deleted", name, vm.name)
    return _("Disk %(disk)s of %(name)s was deleted; its %(size)s GiB are free in the "
             "quota.", disk=name, name=vm.name, size=size)


@transaction
def grow_disk(vm: VM, target: str, size_gib) -> str:
    """Grow a disk (the system disk too) to ``size_gib``: the volume, and for a running
    VM the block device the guest sees, at once. Never smaller. Raises FieldError
    (bad size, shrinking), NotFound, QuotaExceeded, Conflict, Unavailable, ServiceError."""
    size = check_size(size_gib)
    disk = disk_of(vm, target)
    if size < disk.size_gib:
        raise FieldError(_("%(disk)s has %(size)s GiB and a disk cannot shrink: give a "
                           "larger size.", disk=disk.target, size=disk.size_gib), "size_gib")
    if size == disk.size_gib:
        raise FieldError(_("%(disk)s has %(size)s GiB already.", disk=disk.target, size=size),
                         "size_gib")
    previous = begin_unsaved(vm, "resizing", _("grow a disk of %(name)s", name=vm.name))
    pool_name = get_settings().storage_pool
    hv = hypervisor(vm.host)
    old, add = disk.size_gib, size - disk.size_gib
    doing = _("Growing %(disk)s of %(name)s", disk=disk.target, name=vm.name)
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
        return _("%(disk)s of %(name)s now has %(size)s GiB; the guest sees the larger disk "
                 "now (grow its partition and file system to use it).", disk=disk.target,
                 name=vm.name, size=size)
    return _("%(disk)s of %(name)s now has %(size)s GiB; the VM sees it at its next start.",
             disk=disk.target, name=vm.name, size=size)
