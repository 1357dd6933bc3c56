"""Who may see and act on what, written once for the pages, the JSON routes, the
console proxy, the command line and the API: a VM is its owner's and the
administrator's; a group's managers (issue 16) may also see its members' VMs, start,
stop and reset them and open their consoles, and nothing else.

Every door says which of these it asks (``action``), and gets its answer here:

* ``VIEW``: see the VM's row and live state (the group page, the state JSON, the API's
  read);
* ``OPERATE``: start, shut down, force off, reboot, reset (``OPERATIONS``);
* ``CONSOLE``: open its screen or its text console;
* ``OWN`` (the default): everything else: its page, delete, resize, disks, snapshots,
  rebuild, clone, migrate, media, the guest's password, pause, suspend to disk...

A VM that the asker may not use for the action is "not found", exactly as one that does
not exist: nobody learns which ids exist, a manager included."""
from __future__ import annotations

from ..extensions import db
from ..models import INT64_MAX, VM, GroupMember, User
from . import NotFound

VIEW, OPERATE, CONSOLE, OWN = "view", "operate", "console", "own"
ACTIONS = (VIEW, OPERATE, CONSOLE, OWN)
# What a group's manager may do with a member's VM.
MANAGER_MAY = frozenset({VIEW, OPERATE, CONSOLE})
# The lifecycle actions (vms/lifecycle.py) that are OPERATE; the others are OWN.
OPERATIONS = frozenset({"start", "shutdown", "poweroff", "reboot", "reset"})


def for_lifecycle(action: str) -> str:
    """The access a lifecycle action (start, pause, save...) asks."""
    return OPERATE if action in OPERATIONS else OWN


def _check(action: str) -> None:
    if action not in ACTIONS:
        raise ValueError(f"unknown access action {action!r}")


def _managed(manager_id: int):
    """(a select of the ids of the users in the groups ``manager_id`` manages, himself
    among them; the alias of their membership rows)."""
    mine, theirs = db.aliased(GroupMember), db.aliased(GroupMember)
    return (db.select(theirs.user_id)
            .join(mine, db.and_(mine.group_id == theirs.group_id,
                                mine.user_id == manager_id, mine.manager.is_(True))),
            theirs)


def managed_owners(manager_id: int):
    """A subquery: the ids of the users in the groups ``manager_id`` manages."""
    return _managed(manager_id)[0]


def manages(manager: User, owner_id: int) -> bool:
    """Whether ``manager`` is a manager of a group ``owner_id`` is a member of."""
    stmt, theirs = _managed(manager.id)
    return db.session.execute(stmt.where(theirs.user_id == owner_id).limit(1)).first() \
        is not None


def may_use_vm(user: User | None, vm: VM | None, action: str = OWN) -> bool:
    """Whether ``user`` may do ``action`` with ``vm`` (or, OWN, see and delete a lost
    VM's record): an active account that owns it or is the administrator, or, for
    VIEW, OPERATE and CONSOLE, a manager of a group its owner is a member of."""
    _check(action)
    if user is None or vm is None or not user.active:
        return False
    if user.is_admin or vm.owner_id == user.id:
        return True
    return action in MANAGER_MAY and manages(user, vm.owner_id)


def vms_visible_to(user: User, stmt, action: str = OWN):
    """``stmt`` (a select over VM) narrowed to the VMs ``user`` may use for ``action``:
    with OWN his own (lists of "my VMs"), with VIEW also those of the members of the
    groups he manages (the group page's states and events)."""
    _check(action)
    if user.is_admin:
        return stmt
    if action in MANAGER_MAY:
        return stmt.where(db.or_(VM.owner_id == user.id,
                                 VM.owner_id.in_(managed_owners(user.id))))
    return stmt.where(VM.owner_id == user.id)


def vm_for(user: User, vm_id: int, action: str = OWN) -> VM:
    """The VM with this id if ``user`` may use it for ``action``. Raises NotFound
    otherwise, the same for a VM that does not exist and one that is not the user's,
    so that nobody learns which ids exist."""
    vm = db.session.get(VM, vm_id) if 0 < vm_id <= INT64_MAX else None
    if not may_use_vm(user, vm, action):
        raise NotFound()
    return vm


def may_see_task(user: User | None, task) -> bool:
    """A task, like a VM, is its owner's and the administrator's (who sees them all)."""
    return user is not None and task is not None and bool(user.active) and \
        (user.is_admin or task.owner_id == user.id)
