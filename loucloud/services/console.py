"""Console tokens: one-time, short-lived, bound to one user and one VM.

The browser gets the token once (in the URL fragment, which no host logs); the
database keeps its SHA-256 only. The console proxy consumes it: after checking the
browser's Origin and that the request comes from the same user's session, an atomic
UPDATE marks it used, and the VM's VNC address is read from libvirt at that moment,
with a new VNC password that only the proxy learns (console/rfb.py)."""
from __future__ import annotations

import hashlib
import logging
import re
import secrets
import string
from dataclasses import dataclass
from datetime import timedelta

from flask_babel import gettext as _

from ..extensions import db
from ..models import VM, ConsoleToken, User, utcnow
from ..virt import HostUnavailable, InvalidState, VirtError
from ..virt.driver import SerialBridge
from . import Conflict, NotFound, ServiceError, Unavailable
from .access import CONSOLE, may_use_vm
from .hypervisors import hypervisor
from .settings import get_settings
from .vms.views import state_label

log = logging.getLogger(__name__)

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32): 256 bits
# The VNC password the proxy answers with works this long after the console opened: the
# proxy connects at once; it is replaced at the next opening anyway.
SCREEN_PASSWORD_SECONDS = 30
PASSWORD_CHARS = string.ascii_letters + string.digits


class ConsoleRefused(ServiceError):
    """The proxy must not connect; ``str(e)`` says why (never the token itself)."""

    status = 403

    @classmethod
    def because(cls, why: str) -> ConsoleRefused:
        """The refusal of a handshake: ``why`` goes to the proxy's log only (in English,
        as every log line), never to a person (the browser gets a bare 403, and its
        page asks LouCloud why the console ended: static/consolelink.js)."""
        return cls(why)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


KINDS = ("vnc", "serial")


def issue_token(user: User, vm: VM, kind: str = "vnc") -> str:
    """A new console token for ``user`` on ``vm``: its screen ("vnc") or its serial
    line ("serial"). Refused when the VM is not running or its host does not answer,
    and not found when ``user`` may not open its consoles (access.py)."""
    if not may_use_vm(user, vm, CONSOLE):
        raise NotFound()
    if kind not in KINDS:
        raise Conflict(_("No such console: %(kind)s.", kind=kind))
    try:
        if kind == "vnc":
            hypervisor(vm.host).vnc_address(vm.uuid)
        else:
            status = hypervisor(vm.host).status(vm.uuid)
            if status.state not in ("running", "paused"):
                raise InvalidState(_("the VM is %(state)s.", state=state_label(status.state)))
            if not status.has_serial:
                raise InvalidState(_("the VM has no serial port."))
    except InvalidState as exc:
        if kind == "vnc":
            raise Conflict(_("%(name)s has no screen to show: %(error)s Start it first.",
                             name=vm.name, error=exc)) from None
        raise Conflict(_("%(name)s has no text console to show: %(error)s Start it first.",
                         name=vm.name, error=exc)) from None
    except HostUnavailable as exc:
        raise Unavailable(_("%(host)s does not answer: %(error)s", host=vm.host.name,
                            error=exc)) from None
    except VirtError as exc:
        raise Conflict(_("No console for %(name)s: %(error)s", name=vm.name,
                         error=exc)) from None
    token = secrets.token_urlsafe(32)
    now = utcnow()
    db.session.add(ConsoleToken(
        token_hash=_hash(token), user_id=user.id, vm_id=vm.id, kind=kind, created_at=now,
        expires_at=now + timedelta(seconds=get_settings().console_token_seconds)))
    # Used and expired tokens are of no use any more: the table stays small.
    db.session.execute(db.delete(ConsoleToken).where(
        db.or_(ConsoleToken.used_at.is_not(None), ConsoleToken.expires_at < now)))
    db.session.commit()
    return token


def _take(token: str, session_user_id: int | None, kind: str) -> VM:
    """Use up ``token`` (of ``kind``) for the user of the presenting session and
    return its VM. Raises ConsoleRefused; a token presented by the wrong session, or
    to the other kind of console, is not used up."""
    if not isinstance(token, str) or not TOKEN_RE.match(token):
        raise ConsoleRefused.because("malformed token")
    digest = _hash(token)
    row = db.session.execute(
        db.select(ConsoleToken).where(ConsoleToken.token_hash == digest)).scalar()
    now = utcnow()
    if row is None:
        raise ConsoleRefused.because("unknown token")
    if row.used_at is not None:
        raise ConsoleRefused.because("token already used")
    if row.expires_at <= now:
        raise ConsoleRefused.because("token expired")
    if session_user_id != row.user_id:
        raise ConsoleRefused.because("token presented by another session")
    if row.kind != kind:
        raise ConsoleRefused.because(f"a {row.kind} token presented to the {kind} console")
    taken = db.session.execute(
        db.update(ConsoleToken).where(ConsoleToken.id == row.id,
                                      ConsoleToken.used_at.is_(None),
                                      ConsoleToken.expires_at > now)
        .values(used_at=now).execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    if taken != 1:
        raise ConsoleRefused.because("token already used")
    user, vm = db.session.get(User, row.user_id), db.session.get(VM, row.vm_id)
    if not may_use_vm(user, vm, CONSOLE):
        raise ConsoleRefused.because("no access to this VM any more")
    return vm


@dataclass(frozen=True)
class Screen:
    """Where the proxy connects for a screen, and the password it answers the VNC
    server's challenge with (None: a simulated host, which has no VNC server)."""
    host: str
    port: int
    password: str | None


def _screen_password() -> str:
    return "".join(secrets.choice(PASSWORD_CHARS) for _i in range(8))  # VNC reads 8


def consume(token: str, session_user_id: int | None) -> Screen:
    """Use up a screen ``token``: the VM's VNC server gets a new random password, valid
    for SCREEN_PASSWORD_SECONDS (the one before stops working), and the proxy gets it
    with the VNC address libvirt reports now.

    ``session_user_id`` is the user of the browser session that presents the token: it
    must be the user the token was issued to. Raises ConsoleRefused; a token presented
    by the wrong session is not used up."""
    vm = _take(token, session_user_id, "vnc")
    password = _screen_password()
    try:
        host, port, protected = hypervisor(vm.host).open_screen(
            vm.uuid, password, SCREEN_PASSWORD_SECONDS)
    except VirtError as exc:
        raise ConsoleRefused.because(f"VM {vm.id}: {exc}") from None
    return Screen(host, port, password if protected else None)


def consume_serial(token: str, session_user_id: int | None) -> SerialBridge:
    """Use up a text console ``token`` and open the VM's serial line (libvirt's
    console stream, as a local socket). Same rules as ``consume``."""
    vm = _take(token, session_user_id, "serial")
    try:
        return hypervisor(vm.host).open_serial(vm.uuid)
    except VirtError as exc:
        raise ConsoleRefused.because(f"VM {vm.id}: {exc}") from None


def revoke_for_vm(vm_id: int) -> None:
    """End the console tokens of a VM (stopped or deleted). Does not commit."""
    db.session.execute(db.delete(ConsoleToken).where(ConsoleToken.vm_id == vm_id))


def revoke_for_user(user_id: int) -> None:
    """End the console tokens of a user (disabled or logged out). Does not commit."""
    db.session.execute(db.delete(ConsoleToken).where(ConsoleToken.user_id == user_id))
