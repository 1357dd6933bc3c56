"""The VM lifecycle after create (vms/create.py): act (start, shut down, ...) and
delete. An action holds the VM in a transitional status (one action at a time, across
processes); a delete that cannot finish leaves the VM listed with the reason."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ...extensions import db
from ...i18n import when
from ...models import VM, utcnow
from ...virt import (AlreadyExists, DomainNotFound, HostUnavailable, InvalidState,
                     NoAnswer, NotSupported, VirtError)
from .. import Conflict, FieldError, ServiceError, Unavailable, transaction
from .. import networks as network_service
from .. import said, tasks, watching
from ..console import revoke_for_vm
from ..hypervisors import hypervisor
from ..settings import get_settings
from .state import forget_states
from .views import TRANSITIONAL, state_label

log = logging.getLogger(__name__)

# Action -> (transitional status, message on success). The texts are lazy: said in the
# reader's language when they are used.
ACTIONS = {
    "start": ("starting", _l("%(name)s is starting.")),
    "shutdown": ("stopping", _l("Shutdown requested: the guest system powers %(name)s off. "
                                "A machine without an OS ignores it; use Force off.")),
    "poweroff": ("stopping", _l("%(name)s was powered off.")),
    "reboot": ("rebooting", _l("Reboot requested from the guest system of %(name)s. A "
                               "machine without an OS ignores it; use Reset.")),
    "reset": ("rebooting", _l("%(name)s was reset.")),
    "pause": ("pausing", _l("%(name)s is paused.")),
    "resume": ("resuming", _l("%(name)s is running again.")),
    "save": ("saving", _l("%(name)s's memory was saved to disk and it is shut off: Start "
                          "resumes it where it was.")),
}
LABELS = {"start": _l("Start"), "shutdown": _l("Shut down"), "poweroff": _l("Force off"),
          "reboot": _l("Reboot"), "reset": _l("Reset"), "pause": _l("Pause"),
          "resume": _l("Resume"), "save": _l("Suspend to disk")}
# What an action does to a VM, for "Cannot ...: why." (its label, lower-case, and the VM).
DOING = {"start": _l("start %(name)s"), "shutdown": _l("shut down %(name)s"),
         "poweroff": _l("force off %(name)s"), "reboot": _l("reboot %(name)s"),
         "reset": _l("reset %(name)s"), "pause": _l("pause %(name)s"),
         "resume": _l("resume %(name)s"), "save": _l("suspend to disk %(name)s")}


def refusal(vm: VM, exc: VirtError, otherwise: str, *, conflict: str | None = None,
            kinds: tuple[type, ...] = (InvalidState, AlreadyExists, NotSupported),
            unavailable: str | None = None) -> ServiceError:
    """What a person is told when a host's answer stops a verb on ``vm``: its host
    does not answer (503: ``unavailable``, or "was not changed"; a verb that got no
    answer in time, NoAnswer: its outcome is unknown), the VM is gone from it (409), a
    refusal of one of ``kinds`` that fits the VM's state (409: ``conflict``, when given),
    else ``otherwise``."""
    if isinstance(exc, NoAnswer) and unavailable is None:
        return Unavailable(_unknown(vm, exc))
    if isinstance(exc, HostUnavailable):
        return Unavailable(unavailable or _("%(host)s does not answer: %(error)s. %(name)s "
                                            "was not changed.", host=vm.host.name, error=exc,
                                            name=vm.name))
    if isinstance(exc, DomainNotFound):
        return Conflict(_("%(name)s is missing on %(host)s.", name=vm.name,
                          host=vm.host.name))
    if conflict is not None and isinstance(exc, kinds):
        return Conflict(conflict)
    return ServiceError(otherwise)


def _unknown(vm: VM, exc: VirtError) -> str:
    return _("%(host)s gave no answer in time: %(error)s. The outcome is unknown: "
             "%(name)s's state will be seen when %(host)s answers.", host=vm.host.name,
             error=exc, name=vm.name)


def unknown_outcome(vm: VM, exc: NoAnswer, what: str) -> ServiceError:
    """A verb that walks the VM's whole memory got no answer within its bound: the host
    may still be at it, so nothing is put back and nothing is said to be unchanged. The
    VM is left in error ("``what`` outcome unknown"; any action takes it up again) and
    its state comes from the host when it answers (the watcher). Returns the 503 to
    raise. ``what`` is said to a person (a translated label: "Rebuild")."""
    forget_states(vm.host)
    _end(vm, VM.ERROR, _l("%(what)s outcome unknown: %(error)s", what=what, error=exc))
    log.warning("%s of %s: no answer from %s in time (%s); outcome unknown", what, vm.name,
                vm.host.name, exc)
    return Unavailable(_unknown(vm, exc))


# -- actions ---------------------------------------------------------------------------
def _begin(vm: VM, status: str) -> tuple[str, datetime, datetime | None]:
    """Mark the VM busy with ``status``, unless another action holds it (``claim``, then
    the commit). Returns the (status, status_since, live_changed_at) it replaced, for
    _put_back."""
    previous = claim(vm.id, status)
    db.session.commit()
    if previous is None:
        raise busy(vm)
    db.session.refresh(vm)
    return previous


def claim(vm_id: int, status: str) -> tuple[str, datetime, datetime | None] | None:
    """The VM marked busy with ``status`` in the caller's transaction, unless another
    action holds it: a compare-and-set UPDATE, so two concurrent actions (any processes)
    get one success; a status left longer than Settings' stuck bound is taken over,
    unless a task holds the VM (tasks.holding: its heartbeat is alive). Returns the
    (status, status_since, live_changed_at) it replaced, or None (nothing changed)."""
    now = utcnow()
    stale = now - timedelta(seconds=get_settings().stuck_after_seconds)
    previous = db.session.execute(db.select(VM.status, VM.status_since, VM.live_changed_at)
                                  .where(VM.id == vm_id)).one()
    result = db.session.execute(
        db.update(VM).where(VM.id == vm_id, VM.status == previous.status, db.or_(
            VM.status.in_([VM.READY, VM.ERROR]),
            db.and_(VM.status.in_(TRANSITIONAL), VM.status_since < stale,
                    ~tasks.holding("vm", VM.id))))
        .values(status=status, status_since=now, live_changed_at=now)
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        return None
    return previous.status, previous.status_since, previous.live_changed_at


def busy(vm: VM) -> Conflict:
    """The refusal of an action on a VM another action holds (its status read afresh)."""
    db.session.refresh(vm)
    return Conflict(_("%(name)s is busy (%(status)s); try again in a moment.",
                      name=vm.name, status=state_label(vm.status)))


def _end(vm: VM, status: str = VM.READY, error: Any = None) -> None:
    """The action is over: ``status``, and ``error`` (a message, said in each reader's
    language: said.py; or a text already stored) kept as the VM's last error."""
    vm.status, vm.status_since = status, utcnow()
    vm.last_error = None if error is None else said.store(error, 500)
    vm.live_changed_at = vm.status_since   # open pages follow the end of the action
    db.session.commit()


def _put_back(vm: VM, previous: tuple[str, datetime, datetime | None]) -> None:
    """Undo _begin when the action did not happen: the VM's row as it was (its
    last_error, which _begin leaves alone, stays: 'Delete did not finish' and such)."""
    vm.status, vm.status_since, vm.live_changed_at = previous
    db.session.commit()


def _note_state(vm: VM) -> None:
    """What the action left the domain in, into the store for the next page (the
    watcher's event confirms it); a host that cannot tell now leaves it to the event."""
    try:
        watching.note_state(vm, hypervisor(vm.host).domain_state(vm.uuid))
    except VirtError:
        pass


@transaction
def act_on_vm(vm: VM, action: str) -> str:
    """Start, shut down, force off, reboot, reset, pause or resume a VM. Returns the
    message for the user. Raises Conflict when the action does not fit the VM's state
    or another action is under way, Unavailable when its host does not answer."""
    if action not in ACTIONS:
        raise FieldError(_("Unknown action %(action)s.", action=repr(action)))
    status, message = ACTIONS[action]
    if action in ("start", "resume") and vm.expired_at is not None:  # vms/expiry.py
        raise Conflict(_("%(name)s expired on %(when)s and stays shut off: ask the "
                         "administrator or your group's manager to extend it.",
                         name=vm.name, when=when(vm.expired_at)))
    # a start that resumes a saved memory state (the store: snapshots.has_saved_state)
    resumes = action == "start" and (vm.live_state, vm.live_reason) == ("shut off", "saved")
    previous = _begin(vm, status)
    try:
        hypervisor(vm.host).act(vm.uuid, action, resumes=resumes)
    except NoAnswer as exc:   # a save or a resume: the whole memory, a longer bound
        raise unknown_outcome(vm, exc, LABELS[action]) from None
    except InvalidState as exc:
        _put_back(vm, previous)
        raise Conflict(_("Cannot %(doing)s: %(error)s.",
                         doing=DOING[action] % {"name": vm.name}, error=exc)) from None
    except HostUnavailable as exc:
        _put_back(vm, previous)
        raise Unavailable(_("%(host)s does not answer: %(error)s. %(name)s was not "
                            "changed.", host=vm.host.name, error=exc, name=vm.name)) from None
    except VirtError as exc:
        _put_back(vm, previous)
        if isinstance(exc, DomainNotFound):
            raise Conflict(_("%(name)s is missing on %(host)s.", name=vm.name,
                             host=vm.host.name)) from None
        raise ServiceError(_("%(action)s failed: %(error)s", action=LABELS[action],
                             error=exc)) from None
    forget_states(vm.host)
    if action == "save":  # a managed-save shutoff, as the watcher records it
        watching.note_state(vm, "shut off", "saved")
    else:
        _note_state(vm)
    if action == "start":
        vm.started_at = utcnow()
    elif action in ("poweroff", "shutdown", "save"):
        if action in ("poweroff", "save"):
            vm.started_at = None
        revoke_for_vm(vm.id)  # a stopped VM's console links end with it
    _end(vm)
    return message % {"name": vm.name}


@transaction
def delete_vm(vm: VM) -> str:
    """Stop and undefine the domain, delete its overlay volume (never the image) and
    its seed, give its fixed address back, then the row. If the host can't finish, the
    VM stays listed with the reason (and a delete again finishes the rest)."""
    _begin(vm, "deleting")
    host, pool_name = vm.host, get_settings().storage_pool
    hv = hypervisor(host)
    try:
        hv.remove(vm.uuid)
        for volume in vm.volume_names:
            hv.delete_volume(pool_name, volume)
        network_service.release_address(host, vm)
    except VirtError as exc:
        _end(vm, VM.ERROR, _l("Delete did not finish: %(error)s", error=exc))
        if isinstance(exc, HostUnavailable):
            raise Unavailable(_("%(host)s does not answer: %(error)s. %(name)s is kept; "
                                "delete it again when the host is back.", host=host.name,
                                error=exc, name=vm.name)) from None
        raise ServiceError(_("Could not delete %(name)s: %(error)s", name=vm.name,
                             error=exc)) from None
    name = vm.name
    forget_states(host)
    revoke_for_vm(vm.id)
    db.session.delete(vm)
    db.session.commit()
    log.info("VM %s deleted from %s", name, host.name)
    return _("%(name)s was deleted with its disks.", name=name)
