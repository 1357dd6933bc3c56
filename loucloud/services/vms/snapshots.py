"""Snapshots of a VM (internal qcow2 snapshots: see virt/snapshots.py for why), and its
saved memory state (suspend to disk: libvirt's managed save, the "save" action of
lifecycle.py; discarded here).

A snapshot is taken with the running machine (memory and devices) of a running or
paused VM, of its disks only of a shut-off one. Reverting to a memory snapshot leaves
the VM running in the snapshot's state (its guest goes on from that moment); to a
disk-only one, a running VM is forced off, its disks go back, and it boots from them
again; a shut-off VM stays shut off. Its data disks stay as the records say now (attached
since: attached again; detached since: detached again); a snapshot holding a disk
deleted since cannot be reverted. libvirt's list on the host is the truth: the rows
follow it at every snapshot action and at ``list_snapshots``.

A revert also puts back the vCPUs and memory the VM was defined with then: it is
refused when those would put the owner over quota (the snapshot's sizes counted, like
a resize's, before the revert), and the VM's row takes the sizes its host's
definition has after it. A snapshot with memory, a revert and a delete get a bound
of their VM's memory size; when it runs out the host may still be at it, so the VM is
left in error, the outcome unknown (lifecycle.unknown_outcome), not put back."""
from __future__ import annotations

import logging
import re
from datetime import datetime, timezone

from flask_babel import gettext as _, lazy_gettext as _l, ngettext

from ...extensions import db
from ...models import VM, Snapshot, utcnow
from ...virt import NoAnswer, VirtError
from ...virt.driver import DataDisks, DiskChanges, Hypervisor, SnapshotInfo, \
    SnapshotNotFound, Sizes
from .. import Conflict, FieldError, NotFound, ServiceError, transaction
from .. import watching
from ..hypervisors import hypervisor
from ..settings import get_settings
from .create import QuotaExceeded, lock_quota
from .lifecycle import _begin, _end, _put_back, refusal, unknown_outcome
from .state import forget_states
from .views import state_label

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_snapshot_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise FieldError(_("Name the snapshot with 1 to 64 letters, digits, '-', '_' or "
                           "'.', starting with a letter or digit."), "name")
    return name


def host_refusal(vm: VM, exc: VirtError, doing: str) -> ServiceError:
    """The service error for what the host said while ``doing`` something to ``vm``
    (``doing`` names the VM, in the reader's language: "revert vm1")."""
    return refusal(vm, exc, _("Could not %(doing)s: %(error)s", doing=doing, error=exc),
                   conflict=_("Cannot %(doing)s: %(error)s.", doing=doing, error=exc))


def _when(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc).replace(tzinfo=None) if epoch \
        else utcnow()


def _follow(vm: VM, found: list[SnapshotInfo]) -> None:
    """The VM's rows as libvirt lists them: rows of snapshots gone from the host are
    dropped, snapshots made outside LouCloud are listed. Does not commit."""
    on_host = {s.name: s for s in found}
    for row in list(vm.snapshots):
        if row.name not in on_host:
            vm.snapshots.remove(row)
    listed = {row.name for row in vm.snapshots}
    for info in found:
        if info.name not in listed:
            vm.snapshots.append(Snapshot(name=info.name, memory=info.memory,
                                         size_bytes=info.size, created_at=_when(info.created)))


def snapshots_of(vm: VM) -> list[Snapshot]:
    """The VM's snapshots as LouCloud last saw them (no host asked: the VM page)."""
    return list(vm.snapshots)


@transaction
def list_snapshots(vm: VM) -> list[Snapshot]:
    """The VM's snapshots, read from its host (the rows follow it). A host that does not
    answer: Unavailable."""
    try:
        found = hypervisor(vm.host).snapshots(vm.uuid)
    except VirtError as exc:
        raise host_refusal(vm, exc, _("list the snapshots of %(name)s",
                                      name=vm.name)) from None
    _follow(vm, found)
    db.session.commit()
    return list(vm.snapshots)


@transaction
def create_snapshot(vm: VM, name: str, memory: bool | None = None) -> str:
    """Take the snapshot ``name`` of the VM: ``memory`` True (a running or paused VM,
    with its running machine), False (a shut-off VM, its disks), None (what fits its
    state). Raises FieldError (the name), Conflict (the name is taken, the limit is
    reached, the state does not fit, busy), Unavailable."""
    name = check_snapshot_name(name)
    limit = get_settings().snapshots_per_vm
    if limit == 0:
        raise Conflict(_("Snapshots are turned off (Settings: snapshots per VM is 0)."))
    _check_room(vm, name, limit)
    previous = _begin(vm, "snapshotting")
    try:  # again, as the busy mark left it: another create may have ended meanwhile
        _check_room(vm, name, limit)
    except Conflict:
        _put_back(vm, previous)
        raise
    hv = hypervisor(vm.host)
    try:
        if memory is None:
            memory = hv.domain_state(vm.uuid) in ("running", "paused")
        info = hv.create_snapshot(vm.uuid, name, memory)
    except NoAnswer as exc:   # the list follows the host at the next snapshot action
        raise unknown_outcome(vm, exc, _l("Snapshot")) from None
    except VirtError as exc:
        _put_back(vm, previous)
        raise host_refusal(vm, exc, _("snapshot %(name)s", name=vm.name)) from None
    vm.snapshots.append(Snapshot(name=info.name, memory=info.memory, size_bytes=info.size,
                                 created_at=_when(info.created)))
    _end(vm)
    log.info("snapshot %s of %s taken (memory: %s)", name, vm.name, info.memory)
    if info.memory:
        return _("Snapshot %(snapshot)s of %(name)s taken, with its running machine.",
                 snapshot=name, name=vm.name)
    return _("Snapshot %(snapshot)s of %(name)s's disks taken.", snapshot=name, name=vm.name)


def _check_room(vm: VM, name: str, limit: int) -> None:
    if any(row.name == name for row in vm.snapshots):
        raise Conflict(_("%(name)s already has a snapshot named %(snapshot)s.",
                         name=vm.name, snapshot=name))
    if len(vm.snapshots) >= limit:
        raise Conflict(_("%(name)s has %(count)s snapshots, the most a VM may keep "
                         "(%(limit)s): delete one first.", name=vm.name,
                         count=len(vm.snapshots), limit=limit))


def _row(vm: VM, name: str) -> Snapshot | None:
    return next((row for row in vm.snapshots if row.name == name), None)


@transaction
def revert_snapshot(vm: VM, name: str) -> str:
    """Put the VM back to its snapshot ``name`` (see the module's text for what runs
    after, and for its sizes). Raises NotFound (no such snapshot), QuotaExceeded (the
    snapshot's sizes pass the owner's quota), Conflict, Unavailable."""
    name = (name or "").strip()
    row = _row(vm, name)
    previous = _begin(vm, "reverting")
    hv = hypervisor(vm.host)
    old = _sizes(vm)
    try:
        before = hv.domain_state(vm.uuid)
        then = hv.snapshot_sizes(vm.uuid, name)
        vm = _count_larger(vm, previous, name, then)
        reverted = hv.revert_snapshot(vm.uuid, name, start_after=before == "running",
                                      disks=_data_disks(vm))
    except SnapshotNotFound:
        _record(vm, old)
        _put_back(vm, previous)
        if row is not None:  # gone from the host: the list follows it
            vm.snapshots.remove(row)
            db.session.commit()
        raise NotFound(_("%(name)s has no snapshot named %(snapshot)s.", name=vm.name,
                         snapshot=name)) from None
    except NoAnswer as exc:   # the larger sizes stay counted until the host tells
        raise unknown_outcome(vm, exc, _l("Revert")) from None
    except VirtError as exc:
        _record(vm, _sizes_on_host(hv, vm) or old)   # a refusal changed nothing, mostly
        _put_back(vm, previous)
        raise host_refusal(vm, exc, _("revert %(name)s", name=vm.name)) from None
    after = reverted.state
    forget_states(vm.host)
    watching.note_state(vm, after)
    if after == "running" and before != "running":
        vm.started_at = utcnow()
    elif after == "shut off":
        vm.started_at = None
    now = _sizes_on_host(hv, vm)
    if now is not None:
        _record(vm, now)
    _end(vm)
    memory = row.memory if row is not None else after in ("running", "paused")
    log.info("%s reverted to snapshot %s (%s -> %s; sizes %s -> %s; disks %s)", vm.name,
             name, before, after, old, now, reverted.disks)
    if memory:
        said = _("%(name)s is back at snapshot %(snapshot)s: %(state)s, as it was then.",
                 name=vm.name, snapshot=name, state=state_label(after))
    elif after == "running":
        said = _("%(name)s's disks are back at snapshot %(snapshot)s; it was forced off and "
                 "boots from them.", name=vm.name, snapshot=name)
    else:
        said = _("%(name)s's disks are back at snapshot %(snapshot)s; it is %(state)s.",
                 name=vm.name, snapshot=name, state=state_label(after))
    if now is not None and now[:2] != old[:2]:
        said += " " + _("It has %(now)s again, as at the snapshot (it had %(before)s).",
                        now=_sized(now[0], now[1]), before=_sized(old[0], old[1]))
    return said + _disks_said(vm, reverted.disks)


# -- a revert's sizes: the quota and the row -----------------------------------------
# (vCPUs, memory MiB, max vCPUs, max memory MiB): a VM row's sizes
Four = tuple[int, int, "int | None", "int | None"]


def _sizes(vm: VM) -> Four:
    return vm.vcpus, vm.memory_mib, vm.max_vcpus, vm.max_memory_mib


def _record(vm: VM, sizes: Four) -> None:
    vm.vcpus, vm.memory_mib, vm.max_vcpus, vm.max_memory_mib = sizes
    db.session.commit()


def _sized(vcpus: int, memory_mib: int) -> str:
    return ngettext("%(num)s vCPU and %(memory)s MiB of memory",
                    "%(num)s vCPUs and %(memory)s MiB of memory", vcpus, memory=memory_mib)


def _sizes_on_host(hv: Hypervisor, vm: VM) -> Four | None:
    """The sizes the VM's definition has on its host (None: the host cannot tell)."""
    try:
        found = hv.sizes(vm.uuid)
    except VirtError:
        return None
    return found.vcpus, found.memory_mib, found.max_vcpus, found.max_memory_mib


def _count_larger(vm: VM, previous, name: str, then: Sizes | None) -> VM:
    """Before a revert, count the larger of the VM's sizes and those the snapshot puts
    back: the quota must have room for the snapshot's (create.lock_quota, atomically,
    as for a resize), the owner never holds more than the quota while it reverts, and
    the row is never below what the host may have. Raises QuotaExceeded, the VM put
    back."""
    if then is None:
        return vm
    old = _sizes(vm)
    larger = (max(old[0], then.vcpus), max(old[1], then.memory_mib),
              max(old[2] or 0, then.max_vcpus), max(old[3] or 0, then.max_memory_mib))
    if larger == old:
        return vm
    vm_id, vm_name = vm.id, vm.name
    try:
        lock_quota(vm.owner_id, vcpus=larger[0] - old[0], memory_mib=larger[1] - old[1])
    except QuotaExceeded as exc:
        vm = db.session.get(VM, vm_id)
        _put_back(vm, previous)
        raise QuotaExceeded(_(
            "Cannot revert %(name)s to snapshot %(snapshot)s: it puts back %(then)s "
            "(%(name)s has %(now)s now). %(error)s", name=vm_name, snapshot=name,
            then=_sized(then.vcpus, then.memory_mib), now=_sized(old[0], old[1]),
            error=exc)) from None
    vm = db.session.get(VM, vm_id)
    _record(vm, larger)
    return vm


def _data_disks(vm: VM) -> DataDisks:
    """The disks the VM's records say it has (kept through a revert): the system disk
    and the attached data disks."""
    return DataDisks({d.target: d.volume_path for d in vm.disks
                      if d.attached and d.volume_path},
                     frozenset(d.volume_path for d in vm.disks if d.volume_path))


def _disks_said(vm: VM, changes: DiskChanges) -> str:
    """What a revert did to keep the VM's data disks as they are now; a disk whose
    target a disk outside LouCloud took in the snapshot's definition is marked
    detached (the record follows the host)."""
    def names(targets) -> str:
        return ", ".join(targets)
    said = []
    if changes.attached:
        said.append(_("Its data disk %(disks)s (attached after the snapshot) stays "
                      "attached, as it is now.", disks=names(changes.attached)))
    if changes.at_next_start:
        said.append(_("Its data disk %(disks)s is back in its definition but the running "
                      "VM refused the hot-plug: the VM sees it at its next start.",
                      disks=names(changes.at_next_start)))
    if changes.detached:
        said.append(_("Its data disk %(disks)s (detached after the snapshot) stays "
                      "detached; what it holds went back to the snapshot too.",
                      disks=names(changes.detached)))
    if changes.held:
        said.append(_("The guest has not let go of %(disks)s yet (detached after the "
                      "snapshot): it stays detached and leaves the running guest when the "
                      "guest lets go of it, at the latest when the VM stops.",
                      disks=names(changes.held)))
    if changes.refused:
        for disk in vm.disks:
            if disk.target in changes.refused:
                disk.attached = False
        db.session.commit()
        said.append(_("Its data disk %(disks)s could not be attached again (a disk "
                      "LouCloud does not know holds its place in the snapshot's "
                      "definition): it is marked detached.", disks=names(changes.refused)))
    return (" " + " ".join(said)) if said else ""


@transaction
def delete_snapshot(vm: VM, name: str) -> str:
    """Delete the snapshot ``name`` (what it holds in the disk goes with it). Raises
    NotFound, Conflict, Unavailable."""
    name = (name or "").strip()
    row = _row(vm, name)
    if row is None:  # not LouCloud's: refused before the VM is marked busy, unless the
        try:         # host has it (taken outside LouCloud)
            known = [s.name for s in hypervisor(vm.host).snapshots(vm.uuid)]
        except VirtError as exc:
            raise host_refusal(vm, exc, _("delete a snapshot of %(name)s",
                                          name=vm.name)) from None
        if not name or name not in known:
            raise NotFound(_("%(name)s has no snapshot named %(snapshot)s.", name=vm.name,
                             snapshot=name))
    previous = _begin(vm, "snapshotting")
    try:
        existed = hypervisor(vm.host).delete_snapshot(vm.uuid, name)
    except NoAnswer as exc:   # the row stays until the host's list says otherwise
        raise unknown_outcome(vm, exc, _l("Snapshot delete")) from None
    except VirtError as exc:
        _put_back(vm, previous)
        raise host_refusal(vm, exc, _("delete a snapshot of %(name)s",
                                      name=vm.name)) from None
    if row is not None:
        vm.snapshots.remove(row)
    _end(vm)
    if not existed and row is None:
        raise NotFound(_("%(name)s has no snapshot named %(snapshot)s.", name=vm.name,
                         snapshot=name))
    return _("Snapshot %(snapshot)s of %(name)s deleted.", snapshot=name, name=vm.name)


# -- the saved memory state --------------------------------------------------------------
def has_saved_state(vm: VM) -> bool:
    """Whether the VM is shut off holding a saved memory state, as the store has it
    (the watcher's reason "saved"; the save action and the discard note it at once)."""
    return vm.live_state == "shut off" and vm.live_reason == "saved"


def begin_unsaved(vm: VM, status: str, doing: str):
    """lifecycle._begin, then ``unsaved``'s refusal (the VM put back), if any."""
    previous = _begin(vm, status)
    if (refused := unsaved(vm, doing)) is not None:
        _put_back(vm, previous)
        raise refused
    return previous


def unsaved(vm: VM, doing: str) -> ServiceError | None:
    """None, or the refusal of a change to a shut-off VM whose host says it holds a saved
    memory state: its start restores the definition saved with it, so a change of its
    sizes or disks would not apply (a disk gone: no start). A host that cannot tell
    refuses too. ``doing`` names the VM, in the reader's language ("resize vm1")."""
    if vm.live_state in ("running", "paused"):   # a running domain holds none: libvirt
        return None                             # drops it when it starts
    try:
        saved = hypervisor(vm.host).has_saved_state(vm.uuid)
    except VirtError as exc:
        return host_refusal(vm, exc, doing)
    if saved:
        return Conflict(_("Cannot %(doing)s: it holds a saved memory state (suspended to "
                          "disk): start it, or discard the state, first.", doing=doing))
    return None


@transaction
def discard_saved_state(vm: VM) -> str:
    """Delete the VM's saved memory state: its next start boots afresh (what ran in it
    is lost). Raises Conflict (none, busy), Unavailable."""
    try:
        held = has_saved_state(vm) or hypervisor(vm.host).has_saved_state(vm.uuid)
    except VirtError as exc:
        raise host_refusal(vm, exc, _("discard the saved state of %(name)s",
                                      name=vm.name)) from None
    if not held:
        raise Conflict(_("%(name)s holds no saved state.", name=vm.name))
    previous = _begin(vm, "discarding")
    try:
        existed = hypervisor(vm.host).discard_saved_state(vm.uuid)
    except VirtError as exc:
        _put_back(vm, previous)
        raise host_refusal(vm, exc, _("discard the saved state of %(name)s",
                                      name=vm.name)) from None
    if vm.live_reason == "saved":
        vm.live_reason, vm.live_changed_at = "", utcnow()
    _end(vm)
    if not existed:
        raise Conflict(_("%(name)s holds no saved state.", name=vm.name))
    return _("The saved state of %(name)s was discarded: its next start boots afresh.",
             name=vm.name)
