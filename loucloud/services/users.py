"""Users: the single administrator and the ordinary users he creates."""
from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_babel import refresh as refresh_language

from ..extensions import db
from ..models import INT64_MAX, VM, Disk, User
from . import Conflict, FieldError, NotAllowed, NotFound, paginate, transaction
from .auth import end_sessions_of
from .console import revoke_for_user
from .passwords import hash_password, password_problem, verify_password
from .settings import get_settings

log = logging.getLogger(__name__)

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,31}$")
# Login names stay ASCII (typed at every login, in URLs, logs and the command line);
# display names and full names take any language (names.py). Lazy: said in the reader's
# language wherever it is shown (the form's validator, the API's schema, refusals).
USERNAME_MESSAGE = _l("Login names use 2 to 32 ASCII letters (a-z, A-Z), digits, '.', '_' "
                      "or '-', starting with a letter or digit; full names may use any "
                      "language.")
ADMIN_USERNAME = "admin"
FULL_NAME_MAX = User.full_name.type.length  # 120
EMAIL_MAX = User.email.type.length  # 254


@dataclass(frozen=True)
class Quota:
    vms: int
    vcpus: int
    memory_mib: int
    disk_gib: int


@dataclass(frozen=True)
class QuotaUsage:
    used: Quota
    total: Quota

    def rows(self):
        """(label, used, total, unit) for each quota item, for pages."""
        return [(_("VMs"), self.used.vms, self.total.vms, ""),
                ("vCPUs", self.used.vcpus, self.total.vcpus, ""),
                (_("Memory"), self.used.memory_mib, self.total.memory_mib, "MiB"),
                (_("Disk"), self.used.disk_gib, self.total.disk_gib, "GiB")]


def check_username(username: str) -> str:
    username = (username or "").strip()
    if not USERNAME_RE.match(username):
        raise FieldError(str(USERNAME_MESSAGE), "username")
    return username


def check_full_name(full_name: str | None) -> str:
    full_name = (full_name or "").strip()
    if len(full_name) > FULL_NAME_MAX:
        raise FieldError(_("Use at most %(max)d characters for the full name.",
                           max=FULL_NAME_MAX), "full_name")
    return full_name


def check_email(email: str | None) -> str | None:
    """The e-mail address, or None when none is given. Only its shape is checked (no
    look-up of the domain)."""
    email = (email or "").strip()
    if not email:
        return None
    if len(email) > EMAIL_MAX:
        raise FieldError(_("Use at most %(max)d characters for the e-mail address.",
                           max=EMAIL_MAX), "email")
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        raise FieldError(_("Enter an e-mail address such as name@example.org."), "email") \
            from None
    return email


def _check_new_password(password: str, username: str) -> None:
    problem = password_problem(password or "", username)
    if problem:
        raise FieldError(problem, "password")


def _unique_username(username: str, exclude_id: int | None = None) -> None:
    stmt = db.select(User.id).where(db.func.lower(User.username) == username.lower())
    if exclude_id is not None:
        stmt = stmt.where(User.id != exclude_id)
    if db.session.execute(stmt).first():
        raise FieldError(_("This user name is taken."), "username")


def quota_usage(user: User) -> QuotaUsage:
    """What the user's VMs (every record, whatever its state) hold of the quota."""
    # Every disk of every VM counts, attached or not (the system disks included): a
    # scalar subquery, so that the page asks the database once.
    owned = db.select(VM.id).where(VM.owner_id == user.id).scalar_subquery()
    disk_gib = db.select(db.func.coalesce(db.func.sum(Disk.size_gib), 0)) \
        .where(Disk.vm_id.in_(owned)).scalar_subquery()
    row = db.session.execute(
        db.select(db.func.count(VM.id), db.func.coalesce(db.func.sum(VM.vcpus), 0),
                  db.func.coalesce(db.func.sum(VM.memory_mib), 0), disk_gib)
        .where(VM.owner_id == user.id)).one()
    return QuotaUsage(Quota(*(int(v) for v in row)),
                      Quota(user.max_vms, user.max_vcpus, user.max_memory_mib,
                            user.max_disk_gib))


def default_quota() -> Quota:
    s = get_settings()
    return Quota(s.default_max_vms, s.default_max_vcpus, s.default_max_memory_mib,
                 s.default_max_disk_gib)


def create_admin(password: str | None = None) -> tuple[User, bool, str | None]:
    """Create the administrator if there is none. Returns (admin, created, generated
    password or None). With no password given, a random one is generated."""
    admin = the_admin()
    if admin is not None:
        return admin, False, None
    generated = None
    if not password:
        password = generated = secrets.token_urlsafe(12)
    _check_new_password(password, ADMIN_USERNAME)
    quota = default_quota()
    admin = User(username=ADMIN_USERNAME, full_name="Administrator",
                 password_hash=hash_password(password), is_admin=True, active=True,
                 max_vms=max(quota.vms, 100), max_vcpus=max(quota.vcpus, 400),
                 max_memory_mib=max(quota.memory_mib, 1024 * 1024),
                 max_disk_gib=max(quota.disk_gib, 100_000))
    db.session.add(admin)
    db.session.commit()
    log.info("administrator account created")
    return admin, True, generated


@transaction
def create_user(username: str, password: str, full_name: str = "", email: str | None = None,
                quota: Quota | None = None) -> User:
    """Create an ordinary user, with the default quota from Settings unless given."""
    username = check_username(username)
    full_name, email = check_full_name(full_name), check_email(email)
    _unique_username(username)
    _check_new_password(password, username)
    quota = quota or default_quota()
    user = User(username=username, full_name=full_name,
                email=email, password_hash=hash_password(password),
                is_admin=False, active=True, max_vms=quota.vms, max_vcpus=quota.vcpus,
                max_memory_mib=quota.memory_mib, max_disk_gib=quota.disk_gib)
    db.session.add(user)
    db.session.commit()
    log.info("user %s created", username)
    return user


@transaction
def update_user(user: User, *, full_name: str, email: str | None, quota: Quota,
                username: str | None = None) -> User:
    """Change a user's details and quota. The administrator keeps the name 'admin'."""
    full_name, email = check_full_name(full_name), check_email(email)
    if username is not None and username != user.username:
        if user.is_admin:
            raise FieldError(_("The administrator's user name cannot be changed."), "username")
        username = check_username(username)
        _unique_username(username, exclude_id=user.id)
        user.username = username
    user.full_name, user.email = full_name, email
    user.max_vms, user.max_vcpus = quota.vms, quota.vcpus
    user.max_memory_mib, user.max_disk_gib = quota.memory_mib, quota.disk_gib
    db.session.commit()
    return user


@transaction
def set_active(user: User, active: bool) -> User:
    """Enable or disable a user. Disabling ends all of the user's sessions at once."""
    if user.is_admin and not active:
        raise NotAllowed(_("The administrator cannot be disabled."))
    user.active = active
    if not active:
        end_sessions_of(user)
        revoke_for_user(user.id)
    db.session.commit()
    log.info("user %s %s", user.username, "enabled" if active else "disabled")
    return user


@transaction
def change_own_password(user: User, current: str, new: str, keep_session: str | None) -> None:
    """A user changes his password; his other sessions end, this one goes on."""
    ok, _rehash = verify_password(user.password_hash, current or "")
    if not ok:
        raise FieldError(_("The current password is wrong."), "current_password")
    _check_new_password(new, user.username)
    if current == new:
        raise FieldError(_("The new password is the same as the current one."), "password")
    user.password_hash = hash_password(new)
    end_sessions_of(user, keep_key=keep_session)
    db.session.commit()
    log.info("user %s changed his password", user.username)


@transaction
def set_language(user: User, code: str | None) -> str:
    """A user's language for pages, messages and e-mails: one of i18n.LANGUAGES, or
    None (empty) for his browser's."""
    from ..i18n import LANGUAGES

    if code and code not in LANGUAGES:
        raise FieldError(_("Choose one of: %(codes)s, or none for the browser's language.",
                           codes=", ".join(LANGUAGES)), "locale")
    user.locale = code or None
    db.session.commit()
    refresh_language()   # this answer already in the new language
    if user.locale:
        return _("Your pages are now in %(language)s.", language=LANGUAGES[user.locale])
    return _("Your pages now follow your browser's language.")


@transaction
def reset_password(user: User, new: str) -> None:
    """The administrator sets a user's password; every session of that user ends."""
    _check_new_password(new, user.username)
    user.password_hash = hash_password(new)
    end_sessions_of(user)
    db.session.commit()
    log.info("password of user %s reset by the administrator", user.username)


@transaction
def delete_user(user: User) -> None:
    """Delete a user. Refused for the administrator and while the user owns VMs."""
    if user.is_admin:
        raise NotAllowed(_("The administrator cannot be deleted."))
    count = db.session.execute(
        db.select(db.func.count(VM.id)).where(VM.owner_id == user.id)).scalar()
    if count:
        raise Conflict(ngettext("%(name)s still owns %(num)d VM. Delete them first.",
                                "%(name)s still owns %(num)d VMs. Delete them first.",
                                count, name=user.username))
    end_sessions_of(user)
    db.session.delete(user)
    db.session.commit()
    log.info("user %s deleted", user.username)


def get_user(user_id: int) -> User:
    """The user with this id. Raises NotFound."""
    user = db.session.get(User, user_id) if 0 < user_id <= INT64_MAX else None
    if user is None:
        raise NotFound()
    return user


def user_by_name(username: str) -> User:
    """The user called ``username``. Raises NotFound."""
    user = db.session.execute(db.select(User).where(User.username == username)).scalar()
    if user is None:
        raise NotFound(_("There is no user named %(name)s.", name=username))
    return user


def the_admin() -> User | None:
    """The administrator (None before init)."""
    return db.session.execute(db.select(User).where(User.is_admin.is_(True))).scalar()


def all_users() -> list[User]:
    """Every user by name (for choices in forms)."""
    return db.session.execute(db.select(User).order_by(User.username)).scalars().all()


def search_users(*, q: str = "", role: str = "", status: str = "", page: int = 1,
                 per_page: int = 50):
    """A page of users (the administrator first), found by name, full name or e-mail
    and filtered by role ("admin"/"user") and status ("active"/"disabled")."""
    stmt = db.select(User).order_by(User.is_admin.desc(), User.username)
    if q:
        like = f"%{q.strip()}%"
        stmt = stmt.where(db.or_(User.username.ilike(like), User.full_name.ilike(like),
                                 User.email.ilike(like)))
    if role:
        stmt = stmt.where(User.is_admin.is_(role == "admin"))
    if status:
        stmt = stmt.where(User.active.is_(status == "active"))
    return paginate(stmt, page, per_page)
