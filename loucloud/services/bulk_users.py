"""Users created in bulk into a group (issue 16): from a pasted list or a CSV file, one
user a line (username, full name, e-mail; the last two may be left out; a header line
is allowed), each with a generated password shown once.

All or nothing: when any line is wrong, nothing is created and every wrong line is
reported with its number and why; the person fixes them and sends the whole list again.

The passwords are never stored nor logged: the result page shows them once, and keeps
them for one download as CSV for a few minutes in the shared cache, encrypted with a
key that only the page holds (``keep_for_download``, ``take_download``)."""
from __future__ import annotations

import csv
import io
import logging
import secrets
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from ..extensions import cache, db
from ..models import Group, GroupMember, User
from . import FieldError, NotFound, ServiceError, transaction
from .passwords import hash_password
from .users import check_email, check_full_name, check_username, default_quota

log = logging.getLogger(__name__)

MAX_LINES = 500
MAX_BYTES = 256 * 1024
HEADER_WORDS = {"username", "user name", "user", "login"}
DOWNLOAD_SECONDS = 15 * 60


@dataclass(frozen=True)
class Line:
    number: int
    username: str
    full_name: str
    email: str | None


@dataclass(frozen=True)
class NewUser:
    username: str
    full_name: str
    email: str | None
    password: str


class LinesRefused(FieldError):
    """Some lines of the list are wrong: ``lines`` holds (line number, why) for each;
    nothing was created."""

    def __init__(self, lines: list[tuple[int, str]], field: str = "users"):
        count = len(lines)
        head = (_("Nothing was created: line %(number)s is wrong.", number=lines[0][0])
                if count == 1 else
                _("Nothing was created: %(count)s lines are wrong.", count=count))
        detail = " ".join(_("Line %(number)s: %(why)s", number=n, why=why)
                          for n, why in lines[:20])
        more = " " + _("And %(count)s more.", count=count - 20) if count > 20 else ""
        super().__init__(f"{head} {detail}{more}", field, errors={
            field: head, **{f"line {n}": why for n, why in lines}})
        self.head, self.lines = head, lines


def generate_password() -> str:
    """A first password for a new user (16 characters), shown once."""
    return secrets.token_urlsafe(12)


def _is_header(fields: list[str]) -> bool:
    return bool(fields) and fields[0].strip().lower() in HEADER_WORDS


def parse(text: str) -> list[Line]:
    """The users a list asks for. Raises LinesRefused naming every wrong line (a bad
    name or address, too many fields, a name given twice or taken already)."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise FieldError(_("The list is too long: at most %(max)d KiB.", max=MAX_BYTES // 1024),
                         "users")
    rows = list(csv.reader(io.StringIO(text.replace("\0", ""))))
    lines, problems, seen = [], [], {}
    for number, fields in enumerate(rows, start=1):
        fields = [f.strip() for f in fields]
        if not any(fields) or fields[0].startswith("#"):
            continue
        if number == 1 and _is_header(fields):
            continue
        if len(fields) > 3:
            problems.append((number, _("Give at most three fields: username, full name, "
                                       "e-mail.")))
            continue
        username, full_name, email = (fields + ["", ""])[:3]
        try:
            line = Line(number, check_username(username), check_full_name(full_name),
                        check_email(email))
        except FieldError as exc:
            problems.append((number, str(exc)))
            continue
        key = line.username.lower()
        if key in seen:
            problems.append((number, _("%(name)s is on line %(number)s already.",
                                       name=line.username, number=seen[key])))
            continue
        seen[key] = number
        lines.append(line)
    taken = _taken([line.username for line in lines])
    problems += [(line.number, _("The user name %(name)s is taken.", name=line.username))
                 for line in lines if line.username.lower() in taken]
    if len(lines) > MAX_LINES:
        raise FieldError(_("Give at most %(max)d users at a time.", max=MAX_LINES), "users")
    if problems:
        raise LinesRefused(sorted(problems))
    if not lines:
        raise FieldError(_("Give at least one user: username, full name, e-mail, one a "
                           "line."), "users")
    return lines


def _taken(usernames: list[str]) -> set[str]:
    taken = set()
    lowered = [u.lower() for u in usernames]
    for start in range(0, len(lowered), 200):
        taken.update(db.session.execute(db.select(db.func.lower(User.username)).where(
            db.func.lower(User.username).in_(lowered[start:start + 200]))).scalars())
    return taken


@transaction
def create_members(group: Group, text: str, *, manager: bool = False) -> list[NewUser]:
    """Create the users ``text`` lists (a pasted list or a CSV file's content), each with
    the default quota and a generated password, as members of ``group`` (its managers
    with ``manager``): all of them
    or, when a line is wrong, none (LinesRefused). Returns them with their passwords,
    to be shown once."""
    lines = parse(text)
    quota = default_quota()
    made = []
    for line in lines:
        password = generate_password()
        user = User(username=line.username, full_name=line.full_name, email=line.email,
                    password_hash=hash_password(password), is_admin=False, active=True,
                    max_vms=quota.vms, max_vcpus=quota.vcpus,
                    max_memory_mib=quota.memory_mib, max_disk_gib=quota.disk_gib)
        db.session.add(user)
        made.append((user, NewUser(line.username, line.full_name, line.email, password)))
    try:
        db.session.flush()
        db.session.add_all(GroupMember(group_id=group.id, user_id=user.id, manager=manager)
                           for user, _new in made)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise FieldError(_("Another user with one of these names was created meanwhile: "
                           "nothing was created. Send the list again."), "users") from None
    log.info("group %s: %d users created", group.name, len(made))
    return [new for _user, new in made]


def passwords_csv(users: list[NewUser]) -> str:
    """The new users and their passwords as CSV (a header line first)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["username", "full_name", "email", "password"])
    for user in users:
        writer.writerow([user.username, user.full_name, user.email or "", user.password])
    return out.getvalue()


def _cache_key(ticket: str) -> str:
    return f"passwords-download:{ticket}"


def keep_for_download(content: str) -> tuple[str, str]:
    """Keep ``content`` (the passwords' CSV) for one download within DOWNLOAD_SECONDS,
    encrypted; returns (ticket, key): both are needed to take it, and only the page
    that shows the passwords holds the key."""
    key = Fernet.generate_key()
    ticket = secrets.token_urlsafe(16)
    cache.set(_cache_key(ticket), Fernet(key).encrypt(content.encode()),
              timeout=DOWNLOAD_SECONDS)
    return ticket, key.decode()


def take_download(ticket: str, key: str) -> str:
    """The content kept under ``ticket``, once: it is gone after this. Raises NotFound
    when it was taken already or its time is over."""
    gone = NotFound(_("These passwords were downloaded already, or the %(minutes)d minutes "
                      "to do it are over: they are kept nowhere else. Reset the passwords "
                      "of the users who need one.", minutes=DOWNLOAD_SECONDS // 60))
    if not ticket or len(ticket) > 64 or not key or len(key) > 64:
        raise gone
    sealed = cache.get(_cache_key(ticket))
    if sealed is None:
        raise gone
    try:
        content = Fernet(key.encode()).decrypt(sealed).decode()
    except (InvalidToken, ValueError):
        raise ServiceError(_("This download link is not valid.")) from None
    cache.delete(_cache_key(ticket))
    return content
