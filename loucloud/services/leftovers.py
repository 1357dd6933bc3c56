"""What a failed create could not remove from its host (the host had died): kept in a
list and removed as soon as the host answers again, so nothing is orphaned for good."""
from __future__ import annotations

import logging

from ..extensions import db
from ..models import Leftover, Server
from ..virt import HostUnavailable, VirtError
from .hypervisors import hypervisor

log = logging.getLogger(__name__)


def remember(server: Server, kind: str, name: str, pool_name: str = "",
             error: str = "") -> None:
    """Note a volume or a domain (by UUID) to remove from ``server`` later. Commits."""
    db.session.add(Leftover(server_id=server.id, kind=kind, name=name, pool=pool_name,
                            last_error=error[:500]))
    db.session.commit()
    log.warning("%s %s left on %s: will be removed when it answers", kind, name, server.name)


def pending(server_ids: set[int] | None = None) -> list[Leftover]:
    stmt = db.select(Leftover).order_by(Leftover.id)
    if server_ids is not None:
        stmt = stmt.where(Leftover.server_id.in_(server_ids))
    return db.session.execute(stmt).scalars().all()


def clean(server_ids: set[int]) -> int:
    """Remove what is left on these hosts (they just answered). Domains go before
    volumes. Returns how many were removed; what fails again stays listed."""
    removed = 0
    rows = sorted(pending(server_ids), key=lambda r: r.kind != Leftover.DOMAIN)
    for row in rows:
        host = hypervisor(row.server)
        try:
            if row.kind == Leftover.DOMAIN:
                host.remove(row.name)
            else:
                host.delete_volume(row.pool, row.name)
        except VirtError as exc:
            row.last_error = str(exc)[:500]
            continue
        log.info("removed the leftover %s %s from %s", row.kind, row.name, row.server.name)
        db.session.delete(row)
        removed += 1
    if rows:
        db.session.commit()
    return removed


def clean_where_answering(outcomes: dict[int, object]) -> int:
    """Clean the leftovers of hosts whose outcome (see servers.note_states) is not a
    HostUnavailable. Cheap when there are none: one small query."""
    ids = {sid for sid, outcome in outcomes.items()
           if outcome is not None and not isinstance(outcome, HostUnavailable)}
    if not ids or not db.session.execute(
            db.select(Leftover.id).where(Leftover.server_id.in_(ids)).limit(1)).first():
        return 0
    return clean(ids)
