"""Groups of users (issue 16): classes, courses, teams; the administrator's. A group has
members (existing users, or users created in bulk: bulk_users.py), some of them its
managers, who see and run the members' VMs (access.py), an optional total quota on top
of the members' own (group_quota.py), and templates restricted to it (templates.py).
Deleting a group keeps its users and their VMs."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from flask_babel import gettext as _

from ..extensions import db
from ..models import INT64_MAX, VM, Group, GroupMember, Template, User, template_groups
from .names import display_name, normal
from . import FieldError, NotAllowed, NotFound, paginate, transaction
from .group_quota import GroupUsage, group_usage
from .vms.state import views

log = logging.getLogger(__name__)

DESCRIPTION_MAX = Group.description.type.length  # 255
# The bounds of a user's quota (the Users page's), for a group's total.
LIMITS = {"max_vms": 10_000, "max_vcpus": 100_000, "max_memory_mib": 100_000_000,
          "max_disk_gib": 10_000_000}


@dataclass(frozen=True)
class Limits:
    """A group's total quota; None: no limit of that kind."""
    max_vms: int | None = None
    max_vcpus: int | None = None
    max_memory_mib: int | None = None
    max_disk_gib: int | None = None


def _check(name: str, description: str | None, limits: Limits | None,
           exclude_id: int | None) -> tuple[str, str, Limits]:
    name = display_name(name, "name", what="group")   # any language (names.py)
    stmt = db.select(Group.id).where(db.func.lower(Group.name) == name.lower())
    if exclude_id is not None:
        stmt = stmt.where(Group.id != exclude_id)
    if db.session.execute(stmt).first():
        raise FieldError(_("A group with this name exists."), "name")
    description = (description or "").strip()
    if len(description) > DESCRIPTION_MAX:
        raise FieldError(_("Use at most %(max)d characters for the description.",
                           max=DESCRIPTION_MAX), "description")
    limits = limits or Limits()
    for field, high in LIMITS.items():
        value = getattr(limits, field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 <= value <= high):
            raise FieldError(_("Enter a whole number from 0 to %(max)d, or nothing for no "
                               "limit.", max=high), field)
    return name, description, limits


def _apply(group: Group, limits: Limits) -> None:
    for field in LIMITS:
        setattr(group, field, getattr(limits, field))


@transaction
def create_group(name: str, description: str = "", limits: Limits | None = None) -> Group:
    """A new group, without members."""
    name, description, limits = _check(name, description, limits, None)
    group = Group(name=name, description=description)
    _apply(group, limits)
    db.session.add(group)
    db.session.commit()
    log.info("group %s created", name)
    return group


@transaction
def update_group(group: Group, name: str, description: str, limits: Limits) -> Group:
    """Change a group's name, description and total quota (VMs over a lowered quota
    stay: it refuses what would add more)."""
    group.name, group.description, limits = _check(name, description, limits, group.id)
    _apply(group, limits)
    db.session.commit()
    return group


@transaction
def delete_group(group: Group) -> str:
    """Delete a group: its users and their VMs stay. Returns what the person is told
    (templates offered only to it are left to the administrator alone)."""
    name, group_id = group.name, group.id
    orphans = db.session.execute(
        db.select(Template.name).join(template_groups,
                                      template_groups.c.template_id == Template.id)
        .where(template_groups.c.group_id == group_id, Template.public.is_(False),
               ~Template.id.in_(db.select(template_groups.c.template_id)
                                .where(template_groups.c.group_id != group_id)))
        .order_by(Template.name)).scalars().all()
    # The members' rows first, then the group's: the order a member's quota
    # reservation takes its locks in (group_quota.py), so neither waits on the other.
    db.session.execute(db.delete(GroupMember).where(GroupMember.group_id == group_id)
                       .execution_options(synchronize_session=False))
    db.session.execute(db.delete(template_groups).where(template_groups.c.group_id == group_id))
    db.session.delete(group)
    db.session.commit()
    log.info("group %s deleted", name)
    if orphans:
        return _("Group %(name)s deleted; its users and their VMs stay. Templates offered "
                 "only to it are now offered to nobody but the administrator: "
                 "%(templates)s.", name=name, templates=", ".join(orphans))
    return _("Group %(name)s deleted; its users and their VMs stay.", name=name)


def get_group(group_id: int) -> Group:
    """The group with this id. Raises NotFound."""
    group = db.session.get(Group, group_id) if 0 < group_id <= INT64_MAX else None
    if group is None:
        raise NotFound()
    return group


def group_by_name(name: str) -> Group:
    """The group called ``name``. Raises NotFound."""
    group = db.session.execute(db.select(Group).where(Group.name == normal(name))).scalar()
    if group is None:
        raise NotFound(_("There is no group named %(name)s.", name=name))
    return group


def manages_group(user: User, group: Group) -> bool:
    return db.session.execute(db.select(GroupMember.user_id).where(
        GroupMember.group_id == group.id, GroupMember.user_id == user.id,
        GroupMember.manager.is_(True))).first() is not None


def manages_any(user: User) -> bool:
    """Whether ``user`` is a manager of some group."""
    return db.session.execute(db.select(GroupMember.user_id).where(
        GroupMember.user_id == user.id, GroupMember.manager.is_(True)).limit(1)).first() \
        is not None


def group_for(user: User, group_id: int) -> Group:
    """The group with this id if ``user`` is the administrator or one of its managers.
    Raises NotFound otherwise (the same as for a group that does not exist)."""
    group = get_group(group_id)
    if not user.active or not (user.is_admin or manages_group(user, group)):
        raise NotFound()
    return group


def _groups_for(user: User):
    stmt = db.select(Group).order_by(Group.name, Group.id)
    if not user.is_admin:
        stmt = stmt.join(GroupMember, GroupMember.group_id == Group.id).where(
            GroupMember.user_id == user.id, GroupMember.manager.is_(True))
    return stmt


def groups_for(user: User) -> list[Group]:
    """Every group for the administrator; the groups he manages for anybody else."""
    return db.session.execute(_groups_for(user)).scalars().all()


def groups_page(user: User, page: int = 1, per_page: int = 50):
    """A page of groups_for(user) (the API's list)."""
    return paginate(_groups_for(user), page, per_page)


def all_groups() -> list[Group]:
    return db.session.execute(db.select(Group).order_by(Group.name)).scalars().all()


def member_counts() -> dict[int, tuple[int, int]]:
    """(members, managers) of every group, by group id."""
    rows = db.session.execute(
        db.select(GroupMember.group_id, db.func.count(),
                  db.func.sum(db.case((GroupMember.manager.is_(True), 1), else_=0)))
        .group_by(GroupMember.group_id)).all()
    return {group_id: (int(n), int(m or 0)) for group_id, n, m in rows}


def members_of(group: Group) -> list[GroupMember]:
    """The group's memberships, by user name (each with its user)."""
    return db.session.execute(
        db.select(GroupMember).join(User, GroupMember.user_id == User.id)
        .where(GroupMember.group_id == group.id).order_by(User.username)).scalars().all()


def groups_of(user: User) -> list[GroupMember]:
    """The groups ``user`` is a member of (his memberships, by group name)."""
    return db.session.execute(
        db.select(GroupMember).join(Group, GroupMember.group_id == Group.id)
        .where(GroupMember.user_id == user.id).order_by(Group.name)).scalars().all()


def _membership(group: Group, user_id: int) -> GroupMember:
    row = db.session.get(GroupMember, (group.id, user_id)) \
        if isinstance(user_id, int) and 0 < user_id <= INT64_MAX else None
    if row is None:
        raise NotFound(_("This user is not a member of the group."))
    return row


def check_member(user: User) -> None:
    """Refuses the administrator: he sees and runs every VM already."""
    if user.is_admin:
        raise NotAllowed(_("The administrator is in no group: he sees and runs every VM "
                           "already."))


def users_named(names: str | list[str]) -> list[User]:
    """The users called ``names`` (a list, or text with the names separated by spaces
    or commas), in that order. Raises FieldError naming those that do not exist."""
    if isinstance(names, str):
        names = names.replace(",", " ").split()
    names = list(dict.fromkeys(n.strip() for n in names if n.strip()))
    if not names:
        raise FieldError(_("Give the user names of the users to add."), "usernames")
    if len(names) > 1000:
        raise FieldError(_("Give at most %(max)d users at a time.", max=1000), "usernames")
    found = {u.username.lower(): u for u in db.session.execute(
        db.select(User).where(db.func.lower(User.username).in_([n.lower() for n in names]))
    ).scalars()}
    unknown = [n for n in names if n.lower() not in found]
    if unknown:
        raise FieldError(_("There is no user named %(name)s.", name=", ".join(unknown)),
                         "usernames")
    return [found[n.lower()] for n in names]


def _names(users: list[User]) -> str:
    return ", ".join(u.username for u in users)


@transaction
def add_members(group: Group, users: list[User], *, manager: bool = False) -> str:
    """Put ``users`` into the group (managers of it with ``manager``; a member already
    in it is named manager when asked, never unnamed here). Returns the message."""
    if not users:
        raise FieldError(_("Choose the users to add."), "usernames")
    added, named, already = [], [], []
    for user in dict.fromkeys(users):
        check_member(user)
        row = db.session.get(GroupMember, (group.id, user.id))
        if row is None:
            db.session.add(GroupMember(group_id=group.id, user_id=user.id, manager=manager))
            added.append(user)
        elif manager and not row.manager:
            row.manager = True
            named.append(user)
        else:
            already.append(user)
    db.session.commit()
    log.info("group %s: added %s", group.name, _names(added))
    parts = []
    if added:
        parts.append(_("Added to %(group)s as managers: %(names)s.", group=group.name,
                       names=_names(added)) if manager else
                     _("Added to %(group)s: %(names)s.", group=group.name,
                       names=_names(added)))
    if named:
        parts.append(_("Now managers of %(group)s: %(names)s.", group=group.name,
                       names=_names(named)))
    if already:
        parts.append(_("Already in %(group)s: %(names)s.", group=group.name,
                       names=_names(already)))
    return " ".join(parts)


@transaction
def remove_member(group: Group, user_id: int) -> str:
    """Take a user out of the group (his account and VMs stay; a manager loses his
    access to the members' VMs at once)."""
    row = _membership(group, user_id)
    username = row.user.username
    db.session.delete(row)
    db.session.commit()
    log.info("group %s: removed %s", group.name, username)
    return _("%(name)s is no longer a member of %(group)s; the account and its VMs stay.",
             name=username, group=group.name)


@transaction
def set_manager(group: Group, user_id: int, manager: bool) -> str:
    """Name a member manager of the group, or unname him (his access to the other
    members' VMs ends at once, open consoles included at their next connection)."""
    row = _membership(group, user_id)
    if row.manager == manager:
        return (_("%(name)s is a manager of %(group)s already.", name=row.user.username,
                  group=group.name) if manager
                else _("%(name)s is not a manager of %(group)s.", name=row.user.username,
                       group=group.name))
    row.manager = manager
    db.session.commit()
    log.info("group %s: %s %s manager", group.name, row.user.username,
             "named" if manager else "no longer")
    if manager:
        return _("%(name)s is now a manager of %(group)s.", name=row.user.username,
                 group=group.name)
    return _("%(name)s is no longer a manager of %(group)s.", name=row.user.username,
             group=group.name)


@dataclass
class GroupPage:
    """What a group's page shows: its memberships, each member's VMs (VMView, with
    state) and the usage against the group's total quota."""
    group: Group
    members: list[GroupMember]
    vms: dict[int, list]        # user id -> VMView list
    usage: GroupUsage

    @property
    def vm_count(self) -> int:
        return sum(len(v) for v in self.vms.values())


def group_page(group: Group) -> GroupPage:
    """The group's page (for the administrator or one of its managers: group_for)."""
    members = members_of(group)
    ids = [m.user_id for m in members]
    rows = db.session.execute(db.select(VM).where(VM.owner_id.in_(ids))
                              .order_by(VM.name, VM.id)).scalars().all() if ids else []
    by_owner: dict[int, list] = {i: [] for i in ids}
    for view in views(rows):
        by_owner[view.vm.owner_id].append(view)
    return GroupPage(group, members, by_owner, group_usage(group))
