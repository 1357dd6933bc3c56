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

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

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
        raise FieldError(_("Give %(what)s as a whole number.", what=what), field) from None
    if not low <= number <= high:
        raise FieldError(_("Give %(what)s from %(low)s to %(high)s.", what=what, low=low,
                           high=high), field)
    return number


def check_sizes(vcpus, memory_mib) -> tuple[int | None, int | None]:
    """The asked sizes as numbers (None: not asked). Raises FieldError."""
    vcpus = _whole(vcpus, "vcpus", 1, MAX_VCPUS, _("the vCPUs"))
    memory_mib = _whole(memory_mib, "memory_mib", MIN_MEMORY_MIB, MAX_MEMORY_MIB,
                        _("the memory in MiB"))
    if vcpus is None and memory_mib is None:
        raise FieldError(_("Say the new vCPUs, the new memory, or both."), "vcpus")
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
        raise FieldError(_("%(name)s has these sizes already.", name=vm.name), "vcpus")
    previous = begin_unsaved(vm, "resizing", _("resize %(name)s", name=vm.name))
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
        else {f: _("it does not run now: it gets them at its next start") for f in asked}
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
        raise Conflict(_("%(name)s is missing on %(host)s.", name=vm.name,
                         host=vm.host.name)) from None
    asked = (vm.vcpus, vm.memory_mib, vm.max_vcpus, vm.max_memory_mib)
    try:
        now = hypervisor(vm.host).sizes(vm.uuid)
        found = (now.vcpus, now.memory_mib, now.max_vcpus, now.max_memory_mib)
    except VirtError:
        found = None
    if found is None:
        vm.vcpus, vm.memory_mib, vm.max_vcpus, vm.max_memory_mib = (
            max(a, b or 0) for a, b in zip(asked, old))
        applied = " " + _("The outcome is unknown: check %(name)s on %(host)s when it "
                          "answers (the larger sizes are counted meanwhile).", name=vm.name,
                          host=vm.host.name)
        _end(vm, VM.ERROR, _l("Resize outcome unknown: %(error)s", error=exc))
    else:
        vm.vcpus, vm.memory_mib, vm.max_vcpus, vm.max_memory_mib = found
        applied = " " + (_("%(name)s was not resized.", name=vm.name)
                         if found[:2] == old[:2] else
                         ngettext("%(name)s's definition (what it boots with) has %(num)s "
                                  "vCPU and %(memory)s MiB of memory now.",
                                  "%(name)s's definition (what it boots with) has %(num)s "
                                  "vCPUs and %(memory)s MiB of memory now.", found[0],
                                  name=vm.name, memory=found[1]))
        _put_back(vm, previous)
    log.warning("resize of %s failed: %s (definition: %s)", vm.name, exc, found)
    raise refusal(vm, exc, _("%(host)s could not resize %(name)s: %(error)s.",
                             host=vm.host.name, name=vm.name, error=exc) + applied,
                  unavailable=_("%(host)s does not answer: %(error)s.", host=vm.host.name,
                                error=exc) + applied) from None


def _both(said: list[str]) -> str:
    """One size, or two: "2 vCPUs and 1024 MiB of memory"."""
    return said[0] if len(said) == 1 else _("%(first)s and %(second)s", first=said[0],
                                            second=said[1])


def _message(vm: VM, vcpus, memory_mib, done) -> str:
    asked = []
    if vcpus is not None:
        asked.append(("vCPUs", ngettext("%(num)s vCPU", "%(num)s vCPUs", vcpus)))
    if memory_mib is not None:
        asked.append(("memory", _("%(memory)s MiB of memory", memory=memory_mib)))
    if not done.running:
        return _("%(name)s now has %(sizes)s; it gets them at its next start.",
                 name=vm.name, sizes=_both([a for _w, a in asked]))
    later = dict(done.deferred)
    now = [a for what, a in asked if what not in later]
    parts = []
    if now:
        parts.append(_("%(name)s now has %(sizes)s, running.", name=vm.name,
                       sizes=_both(now)))
    for what, text in asked:
        if what in later:
            parts.append(_("%(size)s: applies at next boot (%(why)s).",
                           size=text[0].upper() + text[1:], why=later[what]))
    if done.guest_online is False:
        parts.append(_("The guest did not confirm it brought the new vCPUs online (no guest "
                       "agent answering): inside it, bring them online (chcpu -e)."))
    return " ".join(parts)
