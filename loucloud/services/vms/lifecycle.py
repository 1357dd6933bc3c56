"""The VM lifecycle: create (quota reserved atomically, placed on a host, disk as an
overlay), act (start, shut down, ...) and delete.

Database rows and hypervisor objects are kept in step: a create that fails at any step
removes what it made on the host and its row, so the quota is as before; an action
holds the VM in a transitional status (one action at a time, across processes)."""
from __future__ import annotations

import logging
import re
import secrets
import uuid as uuidlib
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import VM, Leftover, Host, Template, User, utcnow
from ...virt import DomainNotFound, HostUnavailable, InvalidState, VirtError
from ...virt.driver import DomainSpec, Hypervisor
from .. import Conflict, FieldError, ServiceError, Unavailable, leftovers, transaction
from ..console import revoke_for_vm
from ..hypervisors import hypervisor
from ..settings import get_settings
from ..users import quota_usage
from . import placement
from .state import TRANSITIONAL, forget_states

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
GIB = 1024 ** 3

# Action -> (transitional status, message on success).
ACTIONS = {
    "start": ("starting", "{name} is starting."),
    "shutdown": ("stopping", "Shutdown requested: the guest system powers {name} off. "
                             "A machine without an OS ignores it; use Force off."),
    "poweroff": ("stopping", "{name} was powered off."),
    "reboot": ("rebooting", "Reboot requested from the guest system of {name}. A machine "
                            "without an OS ignores it; use Reset."),
    "reset": ("rebooting", "{name} was reset."),
    "pause": ("pausing", "{name} is paused."),
    "resume": ("resuming", "{name} is running again."),
}
LABELS = {"start": "Start", "shutdown": "Shut down", "poweroff": "Force off",
          "reboot": "Reboot", "reset": "Reset", "pause": "Pause", "resume": "Resume"}


class QuotaExceeded(Conflict):
    """The owner's quota has no room for it (about the whole request, no one field)."""


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise FieldError("Use 1 to 64 letters, digits, '-', '_' or '.'.", "name")
    return name


# -- create ----------------------------------------------------------------------------
def _reserve(owner: User, name: str, template: Template, host: Host) -> VM:
    """Insert the VM's row if the owner's quota allows it, atomically: the UPDATE on the
    owner's row comes first in a fresh transaction and locks that row (InnoDB) or the
    database (SQLite) until the commit, so concurrent creates queue here."""
    owner_id, template_id = owner.id, template.id
    db.session.commit()  # start a fresh transaction: no read may come before the lock
    db.session.execute(db.update(User).where(User.id == owner_id)
                       .values(quota_lock=User.quota_lock + 1))
    owner = db.session.get(User, owner_id)
    template = db.session.get(Template, template_id)
    usage = quota_usage(owner)
    over = []
    for label, used, total, add in (
            ("VMs", usage.used.vms, usage.total.vms, 1),
            ("vCPUs", usage.used.vcpus, usage.total.vcpus, template.vcpus),
            ("memory (MiB)", usage.used.memory_mib, usage.total.memory_mib,
             template.memory_mib),
            ("disk (GiB)", usage.used.disk_gib, usage.total.disk_gib, template.disk_gib)):
        if used + add > total:
            over.append(f"{label} {used} in use + {add} would exceed {total}")
    if over:
        db.session.rollback()
        raise QuotaExceeded("Over quota: " + "; ".join(over) + ".")
    if db.session.execute(db.select(VM.id).where(VM.owner_id == owner_id,
                                                 VM.name == name)).first():
        db.session.rollback()
        raise FieldError(f"You already have a VM named {name}.", "name")
    uuid = str(uuidlib.uuid4())
    vm = VM(name=name, owner_id=owner_id, host_id=host.id, template_id=template_id,
            image_id=template.image_id, domain_name=f"lc-{uuid}", uuid=uuid,
            vcpus=template.vcpus, memory_mib=template.memory_mib, disk_gib=template.disk_gib,
            volume_name=f"lc-{uuid}.qcow2", status=VM.CREATING, status_since=utcnow())
    db.session.add(vm)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise FieldError(f"You already have a VM named {name}.", "name") from None
    return vm


def _random_mac() -> str:
    return "52:54:00:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3))


# What to undo on the host when a later create step fails: (leftover kind, pool or "",
# name, the call that removes it).
Undo = tuple[str, str, str, Callable[[Hypervisor], object]]


@transaction
def create_vm(owner: User, name: str, template: Template, host: Host | None = None,
              start: bool = True, progress=None) -> VM:
    """Create a VM for ``owner`` from ``template``, on ``host`` or on the host chosen
    by placement, and start it unless ``start`` is False.

    Raises FieldError (bad name), QuotaExceeded, Unavailable (no host) or ServiceError
    with libvirt's reason; in every failure nothing is left: no domain, no volume, no
    row (what a dead host keeps is listed and removed when it answers again).

    ``progress(step)`` is called as each step is reached: "prepared", "volume",
    "defined", "starting" (for progress reports, and for tests that break a step)."""
    step = progress or (lambda _step: None)
    name = check_name(name)
    image = template.image
    if host is None:
        host = placement.choose_host(template)
    else:
        placement.check_host_for(template, host)
    settings = get_settings()
    listen = placement.vnc_listen_for(host)
    vm = _reserve(owner, name, template, host)
    hv = hypervisor(host)
    pool_name, network = settings.storage_pool, settings.network
    undo: list[Undo] = []
    try:
        prep = hv.prepare_for_vms(pool_name, network)
        step("prepared")
        undo.append((Leftover.VOLUME, pool_name, vm.volume_name,
                     lambda h, n=vm.volume_name: h.delete_volume(pool_name, n)))
        volume = hv.create_overlay(pool_name, vm.volume_name, vm.disk_gib * GIB,
                                     image.path, image.format)
        step("volume")
        mac = _random_mac() if prep.network_active else None
        spec = DomainSpec(name=vm.domain_name, uuid=vm.uuid, title=vm.name, vcpus=vm.vcpus,
                          memory_mib=vm.memory_mib, disk_path=volume.path,
                          domain_type=prep.domain_type, arch=prep.arch,
                          os_type=image.os_type, network=network if mac else None, mac=mac,
                          vnc_listen=listen, vm_id=vm.id, owner=owner.username)
        undo.append((Leftover.DOMAIN, "", vm.uuid, lambda h, u=vm.uuid: h.remove(u)))
        hv.define(spec)
        step("defined")
        if start:
            step("starting")
            hv.start_new(spec)
    except VirtError as exc:
        _undo(host, hv, undo)
        db.session.rollback()
        db.session.delete(db.session.get(VM, vm.id))
        db.session.commit()
        log.warning("create of %s for %s on %s failed: %s", name, owner.username,
                    host.name, exc)
        if isinstance(exc, HostUnavailable):
            raise Unavailable(f"{host.name} stopped answering while {name} was being "
                              f"created: {exc}. Nothing was kept.") from None
        raise ServiceError(f"{host.name} could not create {name}: {exc}") from None
    forget_states(host)
    vm = db.session.get(VM, vm.id)
    vm.volume_path, vm.mac = volume.path, mac
    vm.status, vm.status_since = VM.READY, utcnow()
    if start:
        vm.started_at = utcnow()
    db.session.commit()
    log.info("VM %s (%s) created for %s on %s", vm.name, vm.domain_name, owner.username,
             host.name)
    return vm


def _undo(host: Host, hv: Hypervisor, steps: list[Undo]) -> None:
    """Undo creation steps on the host, newest first. A step is undone even when the
    host never confirmed it (the call may have reached it before it died); what can't be
    removed now (the host is gone) is remembered and removed when it answers."""
    for kind, pool_name, name, remove in reversed(steps):
        try:
            remove(hv)
        except VirtError as exc:
            leftovers.remember(host, kind, name, pool_name, str(exc))


# -- actions ---------------------------------------------------------------------------
def _begin(vm: VM, status: str) -> tuple[str, datetime]:
    """Mark the VM busy with ``status``, unless another action holds it. A compare-and-
    set UPDATE, so two concurrent actions (any processes) get one success. Returns the
    (status, status_since) it replaced, for _put_back."""
    vm_id = vm.id
    now = utcnow()
    stale = now - timedelta(seconds=get_settings().stuck_after_seconds)
    previous = db.session.execute(db.select(VM.status, VM.status_since)
                                  .where(VM.id == vm_id)).one()
    result = db.session.execute(
        db.update(VM).where(VM.id == vm_id, VM.status == previous.status, db.or_(
            VM.status.in_([VM.READY, VM.ERROR]),
            db.and_(VM.status.in_(TRANSITIONAL), VM.status_since < stale)))
        .values(status=status, status_since=now).execution_options(synchronize_session=False))
    db.session.commit()
    if result.rowcount != 1:
        db.session.refresh(vm)
        raise Conflict(f"{vm.name} is busy ({vm.status}); try again in a moment.")
    db.session.refresh(vm)
    return previous.status, previous.status_since


def _end(vm: VM, status: str = VM.READY, error: str | None = None) -> None:
    vm.status, vm.status_since, vm.last_error = status, utcnow(), error
    db.session.commit()


def _put_back(vm: VM, previous: tuple[str, datetime]) -> None:
    """Undo _begin when the action did not happen: the VM's status as it was (its
    last_error, which _begin leaves alone, stays: 'Delete did not finish' and such)."""
    vm.status, vm.status_since = previous
    db.session.commit()


@transaction
def act_on_vm(vm: VM, action: str) -> str:
    """Start, shut down, force off, reboot, reset, pause or resume a VM. Returns the
    message for the user. Raises Conflict when the action does not fit the VM's state
    or another action is under way, Unavailable when its host does not answer."""
    if action not in ACTIONS:
        raise FieldError(f"Unknown action {action!r}.")
    status, message = ACTIONS[action]
    previous = _begin(vm, status)
    try:
        hypervisor(vm.host).act(vm.uuid, action)
    except InvalidState as exc:
        _put_back(vm, previous)
        raise Conflict(f"Cannot {LABELS[action].lower()} {vm.name}: {exc}.") from None
    except HostUnavailable as exc:
        _put_back(vm, previous)
        raise Unavailable(f"{vm.host.name} does not answer: {exc}. {vm.name} was not "
                          "changed.") from None
    except VirtError as exc:
        _put_back(vm, previous)
        if isinstance(exc, DomainNotFound):
            raise Conflict(f"{vm.name} is missing on {vm.host.name}.") from None
        raise ServiceError(f"{LABELS[action]} failed: {exc}") from None
    forget_states(vm.host)
    if action == "start":
        vm.started_at = utcnow()
    elif action in ("poweroff", "shutdown"):
        if action == "poweroff":
            vm.started_at = None
        revoke_for_vm(vm.id)  # a stopped VM's console links end with it
    _end(vm)
    return message.format(name=vm.name)


@transaction
def delete_vm(vm: VM) -> str:
    """Stop and undefine the domain and delete its overlay volume (never the image),
    then the row. If the host can't finish, the VM stays listed with the reason."""
    _begin(vm, "deleting")
    host, pool_name = vm.host, get_settings().storage_pool
    hv = hypervisor(host)
    try:
        hv.remove(vm.uuid)
        if vm.volume_name:
            hv.delete_volume(pool_name, vm.volume_name)
    except VirtError as exc:
        _end(vm, VM.ERROR, f"Delete did not finish: {exc}"[:500])
        if isinstance(exc, HostUnavailable):
            raise Unavailable(f"{host.name} does not answer: {exc}. {vm.name} is kept; "
                              "delete it again when the host is back.") from None
        raise ServiceError(f"Could not delete {vm.name}: {exc}") from None
    name = vm.name
    forget_states(host)
    revoke_for_vm(vm.id)
    db.session.delete(vm)
    db.session.commit()
    log.info("VM %s deleted from %s", name, host.name)
    return f"{name} was deleted with its disk."
