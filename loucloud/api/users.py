"""/api/v1/users: the administrator's users (list, create, read, change, enable or
disable, reset a password, delete, quota usage) and everybody's own profile and SSH keys
(/users/me). The same service functions as the Users and Profile pages
(loucloud/users/routes.py) and `manage.py users`."""
from __future__ import annotations


import marshmallow as ma
from flask import url_for
from flask_login import current_user
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..services import keys as key_service
from ..services import users as user_service
from ..services.passwords import MAX_LENGTH, MIN_LENGTH
from ..services.users import Quota
from ..i18n import LANGUAGES
from .common import PageArgs, UtcDateTime, admin_only, blueprint, page_of, page_schema

blp = blueprint("users", "User accounts and quotas (the administrator's), and the "
                         "caller's own profile and SSH keys.")
URL = "/users"

# The Users page's bounds (loucloud/users/forms.py).
QUOTA_RANGES = {"vms": 10_000, "vcpus": 100_000, "memory_mib": 100_000_000,
                "disk_gib": 10_000_000}


# Everybody's own: the rest of /users is the administrator's.
OWN = frozenset({"api_users.me", "api_users.change_own_password", "api_users.set_language",
                 "api_users.list_keys",
                 "api_users.add_key", "api_users.get_key", "api_users.delete_key"})
blp.before_request(admin_only(_l("Only the administrator manages users."), exempt=OWN))


class QuotaSchema(ma.Schema):
    vms = ma.fields.Integer(required=True, validate=ma.validate.Range(0, QUOTA_RANGES["vms"]))
    vcpus = ma.fields.Integer(required=True,
                              validate=ma.validate.Range(0, QUOTA_RANGES["vcpus"]))
    memory_mib = ma.fields.Integer(required=True,
                                   validate=ma.validate.Range(0, QUOTA_RANGES["memory_mib"]))
    disk_gib = ma.fields.Integer(required=True,
                                 validate=ma.validate.Range(0, QUOTA_RANGES["disk_gib"]))


class QuotaChangeSchema(ma.Schema):
    """Some quota items; those left out keep their value (a new user's: Settings')."""
    vms = ma.fields.Integer(validate=ma.validate.Range(0, QUOTA_RANGES["vms"]))
    vcpus = ma.fields.Integer(validate=ma.validate.Range(0, QUOTA_RANGES["vcpus"]))
    memory_mib = ma.fields.Integer(validate=ma.validate.Range(0, QUOTA_RANGES["memory_mib"]))
    disk_gib = ma.fields.Integer(validate=ma.validate.Range(0, QUOTA_RANGES["disk_gib"]))


class QuotaUsageSchema(ma.Schema):
    used = ma.fields.Nested(QuotaSchema, required=True, metadata={
        "description": "What the user's VMs hold (every VM, whatever its state)"})
    total = ma.fields.Nested(QuotaSchema, required=True, metadata={
        "description": "The user's quota"})


class UserSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    username = ma.fields.String(required=True)
    full_name = ma.fields.String(required=True)
    email = ma.fields.String(required=True, allow_none=True)
    role = ma.fields.String(required=True, validate=ma.validate.OneOf(["admin", "user"]))
    active = ma.fields.Boolean(required=True, metadata={
        "description": "False: disabled (no login, no token works)"})
    created_at = UtcDateTime(required=True)
    last_login_at = UtcDateTime(required=True, allow_none=True)
    locale = ma.fields.String(required=True, allow_none=True, metadata={
        "description": "The language of his pages and messages (null: his browser's)"})
    quota = ma.fields.Nested(QuotaSchema, required=True)


class LanguageSchema(ma.Schema):
    locale = ma.fields.String(required=True, allow_none=True,
                              validate=ma.validate.OneOf(sorted(LANGUAGES)))


class UserDetailSchema(UserSchema):
    usage = ma.fields.Nested(QuotaUsageSchema, required=True)


UserPageSchema = page_schema(UserSchema, "UserPage")


class UserListArgs(PageArgs):
    q = ma.fields.String(load_default="", validate=ma.validate.Length(max=64), metadata={
        "description": "Part of the user name, full name or e-mail address"})
    role = ma.fields.String(load_default="", validate=ma.validate.OneOf(["", "admin", "user"]))
    status = ma.fields.String(load_default="",
                              validate=ma.validate.OneOf(["", "active", "disabled"]))


USERNAME = ma.validate.Regexp(user_service.USERNAME_RE, error=user_service.USERNAME_MESSAGE)
PASSWORD = ma.validate.Length(MIN_LENGTH, MAX_LENGTH)


class UserCreateSchema(ma.Schema):
    username = ma.fields.String(required=True, validate=USERNAME)
    password = ma.fields.String(required=True, validate=PASSWORD)
    full_name = ma.fields.String(load_default="", validate=ma.validate.Length(max=120))
    email = ma.fields.String(load_default=None, allow_none=True,
                             validate=ma.validate.Length(max=254))
    quota = ma.fields.Nested(QuotaChangeSchema, load_default=dict, metadata={
        "description": "Items left out: the default quota of new users (Settings)"})


class UserUpdateSchema(ma.Schema):
    username = ma.fields.String(validate=USERNAME, metadata={
        "description": "Not the administrator's"})
    full_name = ma.fields.String(validate=ma.validate.Length(max=120))
    email = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=254),
                             metadata={"description": "null or empty: none"})
    quota = ma.fields.Nested(QuotaChangeSchema)


class UserPasswordSchema(ma.Schema):
    password = ma.fields.String(required=True, validate=PASSWORD)


class UserOwnPasswordSchema(UserPasswordSchema):
    current_password = ma.fields.String(required=True,
                                        validate=ma.validate.Length(max=MAX_LENGTH))


class UserMessageSchema(ma.Schema):
    message = ma.fields.String(required=True)


class SshKeySchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    key = ma.fields.String(required=True, metadata={"description": "type, data and comment"})
    fingerprint = ma.fields.String(required=True, metadata={"description": "SHA256:…"})
    created_at = UtcDateTime(required=True)


class SshKeyListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(SshKeySchema), required=True)


class SshKeyCreateSchema(ma.Schema):
    name = ma.fields.String(load_default="", validate=ma.validate.Length(max=64), metadata={
        "description": "Empty: the key's comment"})
    key = ma.fields.String(required=True, validate=ma.validate.Length(1, key_service.MAX_LINE),
                           metadata={"description": "One line of a .pub file (ed25519, "
                                                    "ECDSA, or RSA of 2048 bits or more)"})


def _quota(q: Quota) -> dict:
    return {"vms": q.vms, "vcpus": q.vcpus, "memory_mib": q.memory_mib,
            "disk_gib": q.disk_gib}


def user_dict(user, *, usage: bool = False) -> dict:
    out = {"id": user.id, "username": user.username, "full_name": user.full_name,
           "email": user.email, "role": user.role, "active": bool(user.active),
           "created_at": user.created_at, "last_login_at": user.last_login_at,
           "locale": user.locale,
           "quota": _quota(Quota(user.max_vms, user.max_vcpus, user.max_memory_mib,
                                 user.max_disk_gib))}
    if usage:
        out["usage"] = usage_dict(user)
    return out


def usage_dict(user, usage: user_service.QuotaUsage | None = None) -> dict:
    """The user's quota usage (``usage`` when the caller has it already)."""
    usage = usage or user_service.quota_usage(user)
    return {"used": _quota(usage.used), "total": _quota(usage.total)}


def _merged(base: Quota, change: dict) -> Quota:
    return Quota(**{**_quota(base), **change})


@blp.route("")
@blp.arguments(UserListArgs, location="query")
@blp.response(200, UserPageSchema)
def list_users(args):
    """Users, the administrator first, then by name; filtered as the Users page filters."""
    page = user_service.search_users(q=args["q"], role=args["role"], status=args["status"],
                                     page=args["page"], per_page=args["limit"])
    return page_of([user_dict(u) for u in page.items], page=page.page, pages=page.pages,
                   limit=args["limit"], total=page.total)


@blp.route("", methods=["POST"])
@blp.arguments(UserCreateSchema)
@blp.response(201, UserDetailSchema)
def create_user(data):
    """Create an ordinary user; answers 201 with the user's URL in Location."""
    user = user_service.create_user(data["username"], data["password"], data["full_name"],
                                    data["email"],
                                    _merged(user_service.default_quota(), data["quota"]))
    return user_dict(user, usage=True), 201, {
        "Location": url_for("api_users.get_user", user_id=user.id)}


@blp.route("/<int:user_id>")
@blp.response(200, UserDetailSchema)
def get_user(user_id: int):
    """One user with the quota usage of his VMs."""
    return user_dict(user_service.get_user(user_id), usage=True)


@blp.route("/<int:user_id>", methods=["PATCH"])
@blp.arguments(UserUpdateSchema)
@blp.response(200, UserDetailSchema)
def update_user(data, user_id: int):
    """Change a user's name, full name, e-mail address or quota (what is sent only)."""
    user = user_service.get_user(user_id)
    current = Quota(user.max_vms, user.max_vcpus, user.max_memory_mib, user.max_disk_gib)
    user_service.update_user(user, username=data.get("username"),
                             full_name=data.get("full_name", user.full_name),
                             email=data.get("email", user.email),
                             quota=_merged(current, data.get("quota", {})))
    return user_dict(user, usage=True)


@blp.route("/<int:user_id>", methods=["DELETE"])
@blp.response(200, UserMessageSchema)
def delete_user(user_id: int):
    """Delete a user (409 while he owns VMs; never the administrator)."""
    user = user_service.get_user(user_id)
    name = user.username
    user_service.delete_user(user)
    return {"message": _("User %(name)s deleted.", name=name)}


@blp.route("/<int:user_id>/enable", methods=["POST"])
@blp.response(200, UserDetailSchema)
def enable_user(user_id: int):
    """Enable a user: he may log in and use his tokens again."""
    return user_dict(user_service.set_active(user_service.get_user(user_id), True),
                     usage=True)


@blp.route("/<int:user_id>/disable", methods=["POST"])
@blp.response(200, UserDetailSchema)
def disable_user(user_id: int):
    """Disable a user: his sessions end and his tokens stop working at once."""
    return user_dict(user_service.set_active(user_service.get_user(user_id), False),
                     usage=True)


@blp.route("/<int:user_id>/password", methods=["POST"])
@blp.arguments(UserPasswordSchema)
@blp.response(200, UserMessageSchema)
def reset_password(data, user_id: int):
    """Set a user's password; every session of his ends."""
    user = user_service.get_user(user_id)
    user_service.reset_password(user, data["password"])
    return {"message": _("New password set for %(name)s; their sessions have ended.",
                         name=user.username)}


@blp.route("/<int:user_id>/quota")
@blp.response(200, QuotaUsageSchema)
def quota_usage(user_id: int):
    """What a user's VMs hold of his quota."""
    return usage_dict(user_service.get_user(user_id))


# -- the caller's own ------------------------------------------------------------------
@blp.route("/me")
@blp.response(200, UserDetailSchema)
def me():
    """The caller's own account with the quota usage of his VMs."""
    return user_dict(current_user, usage=True)


@blp.route("/me/password", methods=["POST"])
@blp.arguments(UserOwnPasswordSchema)
@blp.response(200, UserMessageSchema)
def change_own_password(data):
    """Change the caller's password (the current one asked); his other sessions end."""
    user_service.change_own_password(current_user, data["current_password"],
                                     data["password"],
                                     getattr(current_user, "login_session_key", None))
    return {"message": _("Password changed. Your other sessions have ended.")}


@blp.route("/me/language", methods=["POST"])
@blp.arguments(LanguageSchema)
@blp.response(200, UserMessageSchema)
def set_language(data):
    """The language of the caller's pages, messages and API errors: en or zh_CN, or
    null for his browser's (Accept-Language)."""
    return {"message": user_service.set_language(current_user, data["locale"])}


@blp.route("/me/keys")
@blp.response(200, SshKeyListSchema)
def list_keys():
    """The caller's SSH public keys, oldest first (new VMs of cloud images get them)."""
    return {"items": key_service.keys_of(current_user)}


@blp.route("/me/keys", methods=["POST"])
@blp.arguments(SshKeyCreateSchema)
@blp.response(201, SshKeySchema)
def add_key(data):
    """Add an SSH public key of the caller's; answers 201 with its URL in Location."""
    key = key_service.add_key(current_user, data["name"], data["key"])
    return key, 201, {"Location": url_for("api_users.get_key", key_id=key.id)}


@blp.route("/me/keys/<int:key_id>")
@blp.response(200, SshKeySchema)
def get_key(key_id: int):
    """One of the caller's SSH keys."""
    return key_service.key_of(current_user, key_id)


@blp.route("/me/keys/<int:key_id>", methods=["DELETE"])
@blp.response(200, UserMessageSchema)
def delete_key(key_id: int):
    """Delete one of the caller's SSH keys."""
    key = key_service.key_of(current_user, key_id)
    name = key.name
    key_service.delete_key(key)
    return {"message": _("Key %(name)s deleted.", name=name)}
