"""Groups of users (issue 16): classes, courses, teams. A group has members, some of
them its managers (they see and run the members' VMs), an optional total quota on top
of each member's own, and templates restricted to it (models/__init__.py: Template's
``public`` flag and ``groups``)."""
from __future__ import annotations

from ..extensions import db
from . import utcnow


class Group(db.Model):
    __tablename__ = "groups"

    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(64), unique=True, nullable=False)
    description = db.Column(db.String(255), nullable=False, default="")
    created_at = db.Column(db.DateTime, nullable=False, default=utcnow)
    # The group's total quota over every member's VMs, on top of each member's own
    # (None: no limit of that kind).
    max_vms = db.Column(db.Integer)
    max_vcpus = db.Column(db.Integer)
    max_memory_mib = db.Column(db.Integer)
    max_disk_gib = db.Column(db.Integer)
    # Bumped by a quota reservation of a member (after his own row's): serialises the
    # reservations of the group's members (services/group_quota.py).
    quota_lock = db.Column(db.Integer, nullable=False, default=0)

    members = db.relationship("GroupMember", back_populates="group",
                              cascade="all, delete-orphan", passive_deletes=True)

    @property
    def has_quota(self) -> bool:
        return any(v is not None for v in (self.max_vms, self.max_vcpus,
                                           self.max_memory_mib, self.max_disk_gib))

    def __repr__(self) -> str:
        return f"<Group {self.name}>"


class GroupMember(db.Model):
    """A user in a group; ``manager``: he sees and runs the members' VMs."""
    __tablename__ = "group_members"

    group_id = db.Column(db.Integer, db.ForeignKey("groups.id", ondelete="CASCADE"),
                         primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id", ondelete="CASCADE"),
                        primary_key=True, index=True)
    manager = db.Column(db.Boolean, nullable=False, default=False)
    added_at = db.Column(db.DateTime, nullable=False, default=utcnow)

    group = db.relationship("Group", back_populates="members")
    user = db.relationship("User")


# Which groups a restricted template is offered to.
template_groups = db.Table(
    "template_groups",
    db.Column("template_id", db.Integer, db.ForeignKey("templates.id", ondelete="CASCADE"),
              primary_key=True),
    db.Column("group_id", db.Integer, db.ForeignKey("groups.id", ondelete="CASCADE"),
              primary_key=True, index=True))
