"""Who may make and run batches (issue 16): the administrator, for any users or group;
a group's manager (a teacher), for the group he manages: batch create for its members,
the actions and the expiry of the batches made for it, and "end of class" (start,
shut down or delete every VM made for the group by its batches). Anybody else: 403;
a batch of another group: 404, like a VM that is not one's own."""
from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _

from ...extensions import db
from ...models import VM, Batch, Group, GroupMember, Template, Task, User
from .. import FieldError, NotAllowed, NotFound
from ..groups import group_for, manages_any, manages_group
from . import batch as batch_service
from . import batch_actions


def check_may_batch(user: User) -> None:
    if not (user.is_admin or manages_any(user)):
        raise NotAllowed(_("Only the administrator and the managers of groups make and run "
                           "batches."))


def managed_groups(user: User) -> list[Group]:
    """The groups ``user`` may make batches for (every group for the administrator)."""
    stmt = db.select(Group).order_by(Group.name)
    if not user.is_admin:
        stmt = stmt.join(GroupMember, GroupMember.group_id == Group.id).where(
            GroupMember.user_id == user.id, GroupMember.manager.is_(True))
    return db.session.execute(stmt).scalars().all()


def group_for_batches(user: User, group_id: int) -> Group:
    """The group if ``user`` may make batches for it: the groups' own rule
    (groups.group_for: the administrator, or one of its managers)."""
    check_may_batch(user)
    return group_for(user, group_id)


def batch_for(user: User, batch_id: int) -> Batch:
    """The batch if ``user`` may see and run it (else NotFound, or NotAllowed for one
    who runs no batches at all)."""
    check_may_batch(user)
    batch = batch_service.get_batch(batch_id)
    if user.is_admin or (batch.group is not None and manages_group(user, batch.group)):
        return batch
    raise NotFound()


def batches_for(user: User) -> list[Batch]:
    check_may_batch(user)
    if user.is_admin:
        return batch_service.latest_batches()
    ids = [g.id for g in managed_groups(user)]
    return db.session.execute(db.select(Batch).where(Batch.group_id.in_(ids))
                              .order_by(Batch.id.desc())).scalars().all()


def students_of(group: Group) -> list[User]:
    """The members a batch for the group makes VMs for: its active members but its
    managers (the teachers)."""
    return db.session.execute(
        db.select(User).join(GroupMember, GroupMember.user_id == User.id)
        .where(GroupMember.group_id == group.id, GroupMember.manager.is_(False),
               User.active.is_(True)).order_by(User.username)).scalars().all()


def start_group_batch(actor: User, group: Group, template: Template, *, pattern: str,
                      per_user: int = 1, expires_at: datetime | None = None) -> Batch:
    """Batch create for a group's members (its managers excluded), by the administrator
    or one of the group's managers."""
    if not (actor.is_admin or manages_group(actor, group)):
        raise NotFound()
    users = students_of(group)
    if not users:
        raise FieldError(_("The group %(group)s has no members to make VMs for (its "
                           "managers get none).", group=group.name), "group_id")
    batch = batch_service.start_batch_create(actor, template, users, pattern=pattern,
                                             per_user=per_user, expires_at=expires_at)
    batch.group_id = group.id
    db.session.commit()
    return batch


def start_user_batch(actor: User, template: Template, users: list[User], *, pattern: str,
                     per_user: int = 1, expires_at: datetime | None = None) -> Batch:
    """Batch create for a list of users: the administrator's."""
    if not actor.is_admin:
        raise NotAllowed(_("Only the administrator makes batches for a list of users; "
                           "choose a group you manage."))
    return batch_service.start_batch_create(actor, template, users, pattern=pattern,
                                            per_user=per_user, expires_at=expires_at)


def group_batch_vms(group: Group) -> list[VM]:
    """Every VM made for the group by its batches ("end of class")."""
    return db.session.execute(
        db.select(VM).join(Batch, VM.batch_id == Batch.id).where(Batch.group_id == group.id)
        .order_by(VM.name, VM.id)).scalars().all()


def act_on_group(actor: User, group: Group, action: str) -> Task:
    if not (actor.is_admin or manages_group(actor, group)):
        raise NotFound()
    return batch_actions.start_batch_action(
        actor, group_batch_vms(group), action,
        _("the batches of %(group)s", group=group.name))


def act_on_batch(actor: User, batch: Batch, action: str) -> Task:
    batch = batch_for(actor, batch.id)
    return batch_actions.start_batch_action(
        actor, batch_service.batch_vms(batch), action, _("batch %(id)s", id=batch.id))
