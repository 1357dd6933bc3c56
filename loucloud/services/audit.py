"""The audit log: every state change made through the web (each POST) or the command
line, with who, what, target, when, result and source address. It records names, ids
and the message the user was shown, never form values: no password or token can get
in."""
from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError

from ..extensions import db
from ..models import AuditEvent
from . import paginate

log = logging.getLogger(__name__)

OK, REFUSED, FAILED = "ok", "refused", "failed"


def record(action: str, result: str, *, target: str = "", message: str = "",
           user_id: int | None = None, username: str = "", address: str = "") -> None:
    """Write one event in a transaction of its own. Never raises: an action must not
    fail because its record could not be written (that is logged instead)."""
    event = AuditEvent(action=action[:64], result=result, target=target[:128],
                       message=" ".join(message.split())[:500], user_id=user_id,
                       username=(username or "")[:64], address=(address or "")[:45])
    try:
        db.session.add(event)
        db.session.commit()
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.error("audit event %s %s on %r not written: %s", action, result, target,
                  exc.__class__.__name__)


def search(*, username: str = "", action: str = "", result: str = "", q: str = "",
           page: int = 1, per_page: int = 100):
    """A page of events, newest first, filtered as the audit page asks."""
    stmt = db.select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    if username:
        stmt = stmt.where(AuditEvent.username == username)
    if action:
        stmt = stmt.where(AuditEvent.action.startswith(action))
    if result:
        stmt = stmt.where(AuditEvent.result == result)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(db.or_(AuditEvent.target.ilike(like), AuditEvent.message.ilike(like),
                                 AuditEvent.address.ilike(like)))
    return paginate(stmt, page, per_page)
