"""Console tokens: one-time, short-lived, bound to one user and one VM.

The browser gets the token once (in the URL fragment, which no host logs); the
database keeps its SHA-256 only. The console proxy consumes it: after checking the
browser's Origin and that the request comes from the same user's session, an atomic
UPDATE marks it used, and the VM's VNC address is read from libvirt at that moment."""
from __future__ import annotations

import hashlib
import logging
import re
import secrets
from datetime import timedelta

from ..extensions import db
from ..models import VM, ConsoleToken, User, utcnow
from ..virt import HostUnavailable, InvalidState, VirtError
from . import Conflict, ServiceError, Unavailable
from .access import may_use_vm
from .hypervisors import hypervisor
from .settings import get_settings

log = logging.getLogger(__name__)

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32): 256 bits


class ConsoleRefused(ServiceError):
    """The proxy must not connect; ``str(e)`` says why (never the token itself)."""

    status = 403


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(user: User, vm: VM) -> str:
    """A new console token for ``user`` on ``vm``. Refused when the VM is not running
    (there is no screen) or its host does not answer."""
    try:
        hypervisor(vm.host).vnc_address(vm.uuid)
    except InvalidState as exc:
        raise Conflict(f"{vm.name} has no screen to show: {exc} Start it first.") from None
    except HostUnavailable as exc:
        raise Unavailable(f"{vm.host.name} does not answer: {exc}") from None
    except VirtError as exc:
        raise Conflict(f"No console for {vm.name}: {exc}") from None
    token = secrets.token_urlsafe(32)
    now = utcnow()
    db.session.add(ConsoleToken(
        token_hash=_hash(token), user_id=user.id, vm_id=vm.id, created_at=now,
        expires_at=now + timedelta(seconds=get_settings().console_token_seconds)))
    # Used and expired tokens are of no use any more: the table stays small.
    db.session.execute(db.delete(ConsoleToken).where(
        db.or_(ConsoleToken.used_at.is_not(None), ConsoleToken.expires_at < now)))
    db.session.commit()
    return token


def consume(token: str, session_user_id: int | None) -> tuple[str, int]:
    """Use up ``token`` and return the VM's VNC (host, port) as libvirt reports it now.

    ``session_user_id`` is the user of the browser session that presents the token: it
    must be the user the token was issued to. Raises ConsoleRefused; a token presented
    by the wrong session is not used up."""
    if not isinstance(token, str) or not TOKEN_RE.match(token):
        raise ConsoleRefused("malformed token")
    digest = _hash(token)
    row = db.session.execute(
        db.select(ConsoleToken).where(ConsoleToken.token_hash == digest)).scalar()
    now = utcnow()
    if row is None:
        raise ConsoleRefused("unknown token")
    if row.used_at is not None:
        raise ConsoleRefused("token already used")
    if row.expires_at <= now:
        raise ConsoleRefused("token expired")
    if session_user_id != row.user_id:
        raise ConsoleRefused("token presented by another session")
    taken = db.session.execute(
        db.update(ConsoleToken).where(ConsoleToken.id == row.id,
                                      ConsoleToken.used_at.is_(None),
                                      ConsoleToken.expires_at > now)
        .values(used_at=now).execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    if taken != 1:
        raise ConsoleRefused("token already used")
    user, vm = db.session.get(User, row.user_id), db.session.get(VM, row.vm_id)
    if not may_use_vm(user, vm):
        raise ConsoleRefused("no access to this VM any more")
    try:
        return hypervisor(vm.host).vnc_address(vm.uuid)
    except VirtError as exc:
        raise ConsoleRefused(f"VM {vm.id}: {exc}") from None


def revoke_for_vm(vm_id: int) -> None:
    """End the console tokens of a VM (stopped or deleted). Does not commit."""
    db.session.execute(db.delete(ConsoleToken).where(ConsoleToken.vm_id == vm_id))


def revoke_for_user(user_id: int) -> None:
    """End the console tokens of a user (disabled or logged out). Does not commit."""
    db.session.execute(db.delete(ConsoleToken).where(ConsoleToken.user_id == user_id))
