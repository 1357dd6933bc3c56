"""A group's total quota (issue 16): a limit on what all its members' VMs hold together,
on top of each member's own quota.

It is checked inside the one quota check (vms/create.py: ``lock_quota``), which every
verb that takes quota goes through (create, clone, resize, disks, a revert that puts
sizes back): after the UPDATE on the owner's row, one UPDATE on the rows of every group
he is a member of (``lock_groups_of``) queues the reservations of all the members of
those groups, before anything is read, so that what is read next (``over``) is what the
others committed (MariaDB's REPEATABLE READ takes its snapshot at the first plain read).
"""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from ..extensions import db
from ..models import VM, Disk, Group, GroupMember
from . import said
from .users import Quota

KINDS = ("vms", "vcpus", "memory_mib", "disk_gib")
# Said in the reader's language when shown (str() at use).
LABELS = {"vms": _l("VMs"), "vcpus": "vCPUs", "memory_mib": _l("Memory"),
          "disk_gib": _l("Disk")}
UNITS = {"vms": "", "vcpus": "", "memory_mib": "MiB", "disk_gib": "GiB"}
# An item of a refusal: the label with its unit.
WITH_UNITS = {"vms": _l("VMs"), "vcpus": "vCPUs", "memory_mib": _l("Memory (MiB)"),
              "disk_gib": _l("Disk (GiB)")}


@dataclass(frozen=True)
class GroupUsage:
    """What a group's members' VMs hold, against the group's total quota (None: no
    limit of that kind)."""
    used: Quota
    total: tuple[int | None, int | None, int | None, int | None]

    def rows(self):
        """(label, used, total or None, unit) for each quota item, for pages."""
        return [(str(LABELS[k]), getattr(self.used, k), t, UNITS[k])
                for k, t in zip(KINDS, self.total)]


def limits_of(group: Group) -> tuple[int | None, int | None, int | None, int | None]:
    return group.max_vms, group.max_vcpus, group.max_memory_mib, group.max_disk_gib


def _members(group_id: int):
    return db.select(GroupMember.user_id).where(GroupMember.group_id == group_id)


def group_usage(group: Group) -> GroupUsage:
    """What every VM of the group's members holds (whatever its state; every disk, as
    for a user's quota)."""
    owned = db.select(VM.id).where(VM.owner_id.in_(_members(group.id))).scalar_subquery()
    disk_gib = db.select(db.func.coalesce(db.func.sum(Disk.size_gib), 0)) \
        .where(Disk.vm_id.in_(owned)).scalar_subquery()
    row = db.session.execute(
        db.select(db.func.count(VM.id), db.func.coalesce(db.func.sum(VM.vcpus), 0),
                  db.func.coalesce(db.func.sum(VM.memory_mib), 0), disk_gib)
        .where(VM.owner_id.in_(_members(group.id)))).one()
    return GroupUsage(Quota(*(int(v) for v in row)), limits_of(group))


def lock_groups_of(owner_id: int) -> None:
    """Lock the rows of every group ``owner_id`` is a member of, in one statement that
    reads nothing first (see the module's docstring). Part of the caller's
    transaction: the locks are held until its commit or rollback."""
    db.session.execute(
        db.update(Group)
        .where(Group.id.in_(db.select(GroupMember.group_id)
                            .where(GroupMember.user_id == owner_id)))
        .values(quota_lock=Group.quota_lock + 1)
        .execution_options(synchronize_session=False))


def over(owner_id: int, adds: Quota) -> list:
    """Why adding ``adds`` to what ``owner_id`` holds passes the total quota of one of
    his groups: a sentence per group at fault (lazy messages; none: it fits)."""
    if not any(getattr(adds, k) > 0 for k in KINDS):
        return []
    groups = db.session.execute(
        db.select(Group).join(GroupMember, GroupMember.group_id == Group.id)
        .where(GroupMember.user_id == owner_id).order_by(Group.name)).scalars().all()
    refusals = []
    for group in groups:
        if not group.has_quota:
            continue
        usage = group_usage(group)
        items = [_l("%(what)s %(used)s in use by its members + %(adds)s would exceed "
                    "%(total)s", what=WITH_UNITS[k], used=getattr(usage.used, k),
                   adds=getattr(adds, k), total=total)
                 for k, total in zip(KINDS, usage.total)
                 if total is not None and getattr(adds, k) > 0
                 and getattr(usage.used, k) + getattr(adds, k) > total]
        if items:
            refusals.append(_l("Over the quota of the group %(name)s: %(items)s.",
                               name=group.name, items=said.Joined(items, "; ")))
    return refusals
