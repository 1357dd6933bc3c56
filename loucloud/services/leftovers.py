"""What a failed create could not remove from its host (the host had died): kept in a
list and removed as soon as the host answers again, so nothing is orphaned for good."""
from __future__ import annotations

import logging

from ..extensions import db
from ..models import Leftover, Host
from ..virt import HostUnavailable, VirtError
from .hypervisors import hypervisor

log = logging.getLogger(__name__)


def remember(host: Host, kind: str, name: str, pool_name: str = "",
             error: str = "") -> None:
    """Note a volume or a domain (by UUID) to remove from ``host`` later. Commits."""
    db.session.add(Leftover(host_id=host.id, kind=kind, name=name, pool=pool_name,
                            last_error=error[:500]))
    db.session.commit()
    log.warning("%s %s left on %s: will be removed when it answers", kind, name, host.name)


def forget(host_id: int, kind: str, name: str) -> None:
    """Drop a note: what it named is being replaced (and removed) by other work."""
    db.session.execute(db.delete(Leftover).where(
        Leftover.host_id == host_id, Leftover.kind == kind, Leftover.name == name))


def pending(host_ids: set[int] | None = None) -> list[Leftover]:
    stmt = db.select(Leftover).order_by(Leftover.id)
    if host_ids is not None:
        stmt = stmt.where(Leftover.host_id.in_(host_ids))
    return db.session.execute(stmt).scalars().all()


def clean(host_ids: set[int]) -> int:
    """Remove what is left on these hosts (they just answered). Domains go before
    volumes. Returns how many were removed; what fails again stays listed."""
    removed = 0
    rows = sorted(pending(host_ids), key=lambda r: r.kind != Leftover.DOMAIN)
    for row in rows:
        hv = hypervisor(row.host)
        try:
            if row.kind == Leftover.DOMAIN:
                hv.remove(row.name)
            elif row.kind == Leftover.ADDRESS:
                mac, _, ip = row.name.partition(" ")
                hv.release_address(row.pool, mac, ip)
            else:
                hv.delete_volume(row.pool, row.name)
        except VirtError as exc:
            row.last_error = str(exc)[:500]
            continue
        log.info("removed the leftover %s %s from %s", row.kind, row.name, row.host.name)
        db.session.delete(row)
        removed += 1
    if rows:
        db.session.commit()
    return removed


def clean_where_answering(outcomes: dict[int, object]) -> int:
    """Clean the leftovers of hosts whose outcome (see hosts.note_states) is not a
    HostUnavailable. Cheap when there are none: one small query."""
    ids = {sid for sid, outcome in outcomes.items()
           if outcome is not None and not isinstance(outcome, HostUnavailable)}
    if not ids or not db.session.execute(
            db.select(Leftover.id).where(Leftover.host_id.in_(ids)).limit(1)).first():
        return 0
    return clean(ids)
