"""/api/v1/groups (issue 16): groups of users, their members and managers, their total
quota, the members' VMs. The administrator's; a group's managers read it and its
members' VMs (and act on those VMs through /api/v1/vms, as services/access.py says).
The same service functions as the groups pages (loucloud/groups/) and `manage.py
groups`."""
from __future__ import annotations

import marshmallow as ma
from flask import url_for
from flask_login import current_user
from flask_babel import lazy_gettext as _l

from ..services import bulk_users
from ..services import groups as group_service
from ..services.group_quota import group_usage
from .common import Bool, Int, PageArgs, UtcDateTime, admin_only, blueprint, page_of, \
    page_schema
from .vms import VMSchema

blp = blueprint("groups", "Groups of users, their managers and total quota (the "
                          "administrator's; a group's managers read it).")
URL = "/groups"

# A group's managers read it; the rest is the administrator's.
READ = frozenset({"api_groups.list_groups", "api_groups.get_group", "api_groups.group_vms"})
blp.before_request(admin_only(_l("Only the administrator manages groups."),
                                exempt=READ))

ID = ma.validate.Range(1, 2 ** 63 - 1)
NAME = ma.validate.Length(1, 64)


def _limit(field: str, description: str):
    return Int(allow_none=True, validate=ma.validate.Range(0, group_service.LIMITS[field]),
               metadata={"description": f"{description} (null: no limit)"})


class GroupQuotaSchema(ma.Schema):
    """The group's total quota over all its members' VMs, on top of each member's own."""
    max_vms = _limit("max_vms", "VMs")
    max_vcpus = _limit("max_vcpus", "vCPUs")
    max_memory_mib = _limit("max_memory_mib", "Memory in MiB")
    max_disk_gib = _limit("max_disk_gib", "Disk in GiB")


class GroupUsedSchema(ma.Schema):
    vms = ma.fields.Integer(required=True)
    vcpus = ma.fields.Integer(required=True)
    memory_mib = ma.fields.Integer(required=True)
    disk_gib = ma.fields.Integer(required=True)


class GroupMemberSchema(ma.Schema):
    user_id = ma.fields.Integer(required=True)
    username = ma.fields.String(required=True)
    full_name = ma.fields.String(required=True)
    manager = ma.fields.Boolean(required=True, metadata={
        "description": "Sees the members' VMs, starts, stops and resets them, opens "
                       "their consoles"})


class GroupSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    description = ma.fields.String(required=True)
    created_at = UtcDateTime(required=True)
    quota = ma.fields.Nested(GroupQuotaSchema, required=True)
    members = ma.fields.Integer(required=True, metadata={"description": "How many"})
    managers = ma.fields.Integer(required=True, metadata={"description": "How many"})


class GroupDetailSchema(GroupSchema):
    used = ma.fields.Nested(GroupUsedSchema, required=True, metadata={
        "description": "What all the members' VMs hold"})
    member_list = ma.fields.List(ma.fields.Nested(GroupMemberSchema), required=True)


GroupPageSchema = page_schema(GroupSchema, "GroupPage")


class GroupCreateSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=NAME)
    description = ma.fields.String(load_default="", validate=ma.validate.Length(
        max=group_service.DESCRIPTION_MAX))
    quota = ma.fields.Nested(GroupQuotaSchema, load_default=dict)


class GroupUpdateSchema(ma.Schema):
    """Only the fields sent change (in quota too)."""
    name = ma.fields.String(validate=NAME)
    description = ma.fields.String(validate=ma.validate.Length(
        max=group_service.DESCRIPTION_MAX))
    quota = ma.fields.Nested(GroupQuotaSchema)


class GroupAddMembersSchema(ma.Schema):
    usernames = ma.fields.List(ma.fields.String(validate=ma.validate.Length(1, 64)),
                               required=True, validate=ma.validate.Length(1, 1000))
    manager = Bool(load_default=False, metadata={"description": "Make them managers"})


class GroupMemberChangeSchema(ma.Schema):
    manager = Bool(required=True)


class GroupNewUsersRequestSchema(ma.Schema):
    csv = ma.fields.String(required=True, validate=ma.validate.Length(
        1, bulk_users.MAX_BYTES), metadata={
        "description": "One new user a line: username, full name, e-mail (the last two "
                       "may be left out); a header line allowed. All or nothing: a wrong "
                       "line creates none (422, each wrong line named in errors)"})
    manager = Bool(load_default=False, metadata={"description": "Make them managers"})


class GroupNewUserSchema(ma.Schema):
    username = ma.fields.String(required=True)
    full_name = ma.fields.String(required=True)
    email = ma.fields.String(allow_none=True)
    password = ma.fields.String(required=True, metadata={
        "description": "Generated; shown only in this answer"})


class GroupNewUsersSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(GroupNewUserSchema), required=True)


class GroupVMsSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(VMSchema), required=True)


class GroupMessageSchema(ma.Schema):
    message = ma.fields.String(required=True)


def _limits(data: dict, base: group_service.Limits | None = None) -> group_service.Limits:
    base = base or group_service.Limits()
    return group_service.Limits(**{f: data.get(f, getattr(base, f))
                                   for f in group_service.LIMITS})


def _quota(group) -> dict:
    return {f: getattr(group, f) for f in group_service.LIMITS}


def group_dict(group, counts: dict | None = None, *, detail: bool = False) -> dict:
    members, managers = (counts if counts is not None else
                         group_service.member_counts()).get(group.id, (0, 0))
    out = {"id": group.id, "name": group.name, "description": group.description,
           "created_at": group.created_at, "quota": _quota(group), "members": members,
           "managers": managers}
    if detail:
        used = group_usage(group).used
        out["used"] = {"vms": used.vms, "vcpus": used.vcpus, "memory_mib": used.memory_mib,
                       "disk_gib": used.disk_gib}
        out["member_list"] = [{"user_id": m.user_id, "username": m.user.username,
                               "full_name": m.user.full_name, "manager": m.manager}
                              for m in group_service.members_of(group)]
    return out


@blp.route("")
@blp.arguments(PageArgs, location="query")
@blp.response(200, GroupPageSchema)
def list_groups(args):
    """Every group for the administrator; those the caller manages for anybody else."""
    page = group_service.groups_page(current_user, args["page"], args["limit"])
    counts = group_service.member_counts()
    return page_of([group_dict(g, counts) for g in page.items], page=page.page,
                   pages=page.pages, limit=args["limit"], total=page.total)


@blp.route("", methods=["POST"])
@blp.arguments(GroupCreateSchema)
@blp.response(201, GroupDetailSchema)
def create_group(data):
    """Create a group (without members); answers 201 with its URL in Location."""
    group = group_service.create_group(data["name"], data["description"],
                                       _limits(data["quota"]))
    return group_dict(group, detail=True), 201, {
        "Location": url_for("api_groups.get_group", group_id=group.id)}


@blp.route("/<int:group_id>")
@blp.response(200, GroupDetailSchema)
def get_group(group_id: int):
    """A group with its members and what their VMs hold (its managers read it too)."""
    return group_dict(group_service.group_for(current_user, group_id), detail=True)


@blp.route("/<int:group_id>/vms")
@blp.response(200, GroupVMsSchema)
def group_vms(group_id: int):
    """The members' VMs with their live state (its managers read them too)."""
    page = group_service.group_page(group_service.group_for(current_user, group_id))
    return {"items": [v.as_dict() for m in page.members for v in page.vms[m.user_id]]}


@blp.route("/<int:group_id>", methods=["PATCH"])
@blp.arguments(GroupUpdateSchema)
@blp.response(200, GroupDetailSchema)
def update_group(data, group_id: int):
    """Change a group's name, description or total quota (what is sent only)."""
    group = group_service.get_group(group_id)
    current = group_service.Limits(**_quota(group))
    group_service.update_group(group, data.get("name", group.name),
                               data.get("description", group.description),
                               _limits(data.get("quota", {}), current))
    return group_dict(group, detail=True)


@blp.route("/<int:group_id>", methods=["DELETE"])
@blp.response(200, GroupMessageSchema)
def delete_group(group_id: int):
    """Delete a group: its users and their VMs stay."""
    return {"message": group_service.delete_group(group_service.get_group(group_id))}


@blp.route("/<int:group_id>/members", methods=["POST"])
@blp.arguments(GroupAddMembersSchema)
@blp.response(200, GroupMessageSchema)
def add_members(data, group_id: int):
    """Put existing users into the group (managers of it with manager: true)."""
    group = group_service.get_group(group_id)
    return {"message": group_service.add_members(
        group, group_service.users_named(data["usernames"]), manager=data["manager"])}


@blp.route("/<int:group_id>/users", methods=["POST"])
@blp.arguments(GroupNewUsersRequestSchema)
@blp.response(201, GroupNewUsersSchema)
def create_users(data, group_id: int):
    """Create new users into the group from CSV lines, with generated passwords
    answered once (all or nothing)."""
    group = group_service.get_group(group_id)
    created = bulk_users.create_members(group, data["csv"], manager=data["manager"])
    return {"items": [{"username": u.username, "full_name": u.full_name, "email": u.email,
                       "password": u.password} for u in created]}, 201


@blp.route("/<int:group_id>/members/<int:user_id>", methods=["PATCH"])
@blp.arguments(GroupMemberChangeSchema)
@blp.response(200, GroupMessageSchema)
def change_member(data, group_id: int, user_id: int):
    """Name a member manager of the group (manager: true) or unname him."""
    group = group_service.get_group(group_id)
    return {"message": group_service.set_manager(group, user_id, data["manager"])}


@blp.route("/<int:group_id>/members/<int:user_id>", methods=["DELETE"])
@blp.response(200, GroupMessageSchema)
def remove_member(group_id: int, user_id: int):
    """Take a user out of the group (the account and its VMs stay)."""
    group = group_service.get_group(group_id)
    return {"message": group_service.remove_member(group, user_id)}
