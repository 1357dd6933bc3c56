"""Who may see and act on what, written once for the pages, the JSON routes, the
console proxy and the command line: a VM is its owner's and the administrator's."""
from __future__ import annotations

from ..extensions import db
from ..models import INT64_MAX, VM, User
from . import NotFound


def may_use_vm(user: User | None, vm: VM | None) -> bool:
    """Whether ``user`` may see, act on and open the console of ``vm`` (or see and
    delete a lost VM's record): an active account that owns it or is the
    administrator."""
    return user is not None and vm is not None and bool(user.active) and \
        (user.is_admin or vm.owner_id == user.id)


def vms_visible_to(user: User, stmt):
    """``stmt`` (a select over VM) narrowed to the VMs ``user`` may see."""
    return stmt if user.is_admin else stmt.where(VM.owner_id == user.id)


def vm_for(user: User, vm_id: int) -> VM:
    """The VM with this id if ``user`` may use it. Raises NotFound otherwise, the same
    for a VM that does not exist and one that is not the user's, so that nobody learns
    which ids exist."""
    vm = db.session.get(VM, vm_id) if 0 < vm_id <= INT64_MAX else None
    if not may_use_vm(user, vm):
        raise NotFound()
    return vm


def may_see_task(user: User | None, task) -> bool:
    """A task, like a VM, is its owner's and the administrator's (who sees them all)."""
    return user is not None and task is not None and bool(user.active) and \
        (user.is_admin or task.owner_id == user.id)
