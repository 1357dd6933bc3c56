"""Resizing a VM (issue 14): new vCPUs and memory, within its owner's quota.

A VM is created with room to grow while it runs (vms/room.py). A running VM takes a
resize at once up to that room: vCPUs hot-plugged (and brought
online in the guest through its agent), memory through the balloon. Fewer vCPUs, or
more vCPUs or memory than the room it was started with, go into its definition only
and apply at its next boot (said plainly; the VM page shows the change as pending
until then). A resize past the room raises the definition's room to ``room_for`` the
new size, for the boots after. A stopped VM simply takes the new size.

Quota counts the defined sizes (``VM.vcpus`` / ``VM.memory_mib``), reserved
atomically as at create: the UPDATE on the owner's row first (``reserve``)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, NoReturn

from ...extensions import db
from ...models import VM
from ...virt import DomainNotFound, VirtError
from .. import Conflict, FieldError, transaction
from ..hypervisors import hypervisor
from .create import QuotaExceeded, lock_quota
from .lifecycle import _end, _put_back, refusal
from .room import balloons, room_for
from .snapshots import begin_unsaved

log = logging.getLogger(__name__)

MAX_VCPUS = 240            # QEMU's x86 machines stop near 255
MIN_MEMORY_MIB, MAX_MEMORY_MIB = 64, 4 * 1024 * 1024


def reserve(vm: VM, apply: Callable[[VM], None], *, vcpus: int = 0, memory_mib: int = 0,
            disk_gib: int = 0) -> VM:
    """Apply a change that adds ``vcpus``, ``memory_mib``, ``disk_gib`` to what the VM's
    owner holds, if the quota allows it, atomically (create.lock_quota: the UPDATE on the
    owner's row first), then ``apply(vm)`` and the commit. Raises QuotaExceeded (nothing
    changed). Returns the VM as reloaded."""
    vm_id = vm.id
    lock_quota(vm.owner_id, vcpus=vcpus, memory_mib=memory_mib, disk_gib=disk_gib)
    vm = db.session.get(VM, vm_id)
    apply(vm)
    db.session.commit()
    return vm


def _whole(value, field: str, low: int, high: int, what: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise FieldError(f"Give {what} as a whole number.", field) from None
    if not low <= number <= high:
        raise FieldError(f"Give {what} from {low} to {high}.", field)
    return number


def check_sizes(vcpus, memory_mib) -> tuple[int | None, int | None]:
    """The asked sizes as numbers (None: not asked). Raises FieldError."""
    vcpus = _whole(vcpus, "vcpus", 1, MAX_VCPUS, "the vCPUs")
    memory_mib = _whole(memory_mib, "memory_mib", MIN_MEMORY_MIB, MAX_MEMORY_MIB,
                        "the memory in MiB")
    if vcpus is None and memory_mib is None:
        raise FieldError("Say the new vCPUs, the new memory, or both.", "vcpus")
    return vcpus, memory_mib


FIELDS = {"vCPUs": "vcpus", "memory": "memory_mib"}   # the face's names -> the fields'


@dataclass(frozen=True)
class ResizeOutcome:
    """What a resize did, for the API: the message, and of the sizes asked, those the
    running VM has at once (``now``) and those waiting for its next boot, with why
    (``at_next_boot``); sizes are named by their fields, vcpus and memory_mib."""
    message: str
    running: bool
    now: tuple[str, ...]
    at_next_boot: tuple[tuple[str, str], ...]
    guest_online: bool | None


def resize_vm(vm: VM, vcpus=None, memory_mib=None) -> str:
    """Give the VM ``vcpus`` and/or ``memory_mib`` (None: unchanged). Returns what the
    person is told: what the VM has now, and what applies at its next boot. Raises
    FieldError (bad sizes, nothing to change), QuotaExceeded, Conflict (busy, missing
    domain), Unavailable (host not answering), ServiceError (the host refused)."""
    return resize(vm, vcpus, memory_mib).message


@transaction
def resize(vm: VM, vcpus=None, memory_mib=None) -> ResizeOutcome:
    """resize_vm, saying what applied now and what at the next boot (ResizeOutcome)."""
    vcpus, memory_mib = check_sizes(vcpus, memory_mib)
    if vcpus == vm.vcpus:
        vcpus = None
    if memory_mib == vm.memory_mib:
        memory_mib = None
    if vcpus is None and memory_mib is None:
        raise FieldError(f"{vm.name} has these sizes already.", "vcpus")
    previous = begin_unsaved(vm, "resizing", "resize")
    old = (vm.vcpus, vm.memory_mib, vm.max_vcpus, vm.max_memory_mib)
    new_vcpus = vcpus if vcpus is not None else vm.vcpus
    new_memory = memory_mib if memory_mib is not None else vm.memory_mib
    vcpu_room, memory_room = room_for(new_vcpus, new_memory, balloons(vm.image))

    def apply(row: VM) -> None:
        row.vcpus, row.memory_mib = new_vcpus, new_memory
        if new_vcpus > (row.max_vcpus or old[0]):
            row.max_vcpus = vcpu_room
        if new_memory > (row.max_memory_mib or old[1]):
            row.max_memory_mib = memory_room

    try:
        vm = reserve(vm, apply, vcpus=new_vcpus - old[0], memory_mib=new_memory - old[1])
    except QuotaExceeded:
        _put_back(vm, previous)
        raise
    try:
        done = hypervisor(vm.host).resize(vm.uuid, vcpus, memory_mib, vcpu_room, memory_room)
    except VirtError as exc:
        _failed(vm, previous, old, exc)
    _end(vm)
    log.info("%s resized to %d vCPUs, %d MiB (deferred: %s)", vm.name, vm.vcpus,
             vm.memory_mib, done.deferred)
    asked = [f for f, v in (("vcpus", vcpus), ("memory_mib", memory_mib)) if v is not None]
    later = {FIELDS.get(what, what): why for what, why in done.deferred} if done.running \
        else {f: "it does not run now: it gets them at its next start" for f in asked}
    return ResizeOutcome(_message(vm, vcpus, memory_mib, done), done.running,
                         tuple(f for f in asked if f not in later),
                         tuple((f, later[f]) for f in asked if f in later),
                         done.guest_online)


def _failed(vm: VM, previous, old: tuple, exc: VirtError) -> NoReturn:
    """The host refused or stopped answering part-way (the definition takes vCPUs, then
    memory, one change at a time): the row takes what the definition says now, so the
    quota counts what the VM boots with, and the refusal says what applied. When the
    host cannot tell, the larger of the old and the asked sizes stay counted and the VM
    is left in error: the outcome is unknown."""
    if isinstance(exc, DomainNotFound):
        vm.vcpus, vm.memory_mib, vm.max_vcpus, vm.max_memory_mib = old
        _put_back(vm, previous)
        raise Conflict(f"{vm.name} is missing on {vm.host.name}.") from None
    asked = (vm.vcpus, vm.memory_mib, vm.max_vcpus, vm.max_memory_mib)
    try:
        now = hypervisor(vm.host).sizes(vm.uuid)
        found = (now.vcpus, now.memory_mib, now.max_vcpus, now.max_memory_mib)
    except VirtError:
        found = None
    if found is None:
        vm.vcpus, vm.memory_mib, vm.max_vcpus, vm.max_memory_mib = (
            max(a, b or 0) for a, b in zip(asked, old))
        applied = (f" The outcome is unknown: check {vm.name} on {vm.host.name} when it "
                   "answers (the larger sizes are counted meanwhile).")
        _end(vm, VM.ERROR, f"Resize outcome unknown: {exc}"[:500])
    else:
        vm.vcpus, vm.memory_mib, vm.max_vcpus, vm.max_memory_mib = found
        applied = f" {vm.name} was not resized." if found[:2] == old[:2] else (
            f" {vm.name}'s definition (what it boots with) has {found[0]} vCPU"
            f"{'s' if found[0] > 1 else ''} and {found[1]} MiB of memory now.")
        _put_back(vm, previous)
    log.warning("resize of %s failed: %s (definition: %s)", vm.name, exc, found)
    raise refusal(vm, exc, f"{vm.host.name} could not resize {vm.name}: {exc}.{applied}",
                  unavailable=f"{vm.host.name} does not answer: {exc}.{applied}") from None


def _message(vm: VM, vcpus, memory_mib, done) -> str:
    asked = []
    if vcpus is not None:
        asked.append(("vCPUs", f"{vcpus} vCPU{'s' if vcpus > 1 else ''}"))
    if memory_mib is not None:
        asked.append(("memory", f"{memory_mib} MiB of memory"))
    if not done.running:
        return f"{vm.name} now has " + " and ".join(a for _w, a in asked) + \
            "; it gets them at its next start."
    later = dict(done.deferred)
    now = [a for what, a in asked if what not in later]
    parts = []
    if now:
        parts.append(f"{vm.name} now has " + " and ".join(now) + ", running.")
    for what, text in asked:
        if what in later:
            parts.append(f"{text[0].upper() + text[1:]}: applies at next boot ({later[what]}).")
    if done.guest_online is False:
        parts.append("The guest did not confirm it brought the new vCPUs online (no guest "
                     "agent answering): inside it, bring them online (chcpu -e).")
    return " ".join(parts)
