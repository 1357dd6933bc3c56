"""Worker leases: a periodic worker (the watcher, the sampler) runs once across every
LouCloud server sharing the database. The process holding a worker's lease does the
work and renews the lease on every beat; when it stops beating, the lease runs out and
another server's process takes over. The compare-and-set is one UPDATE (or the INSERT
of the first holder, which the primary key keeps unique), so two servers never both
hold it."""
from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import WorkerLease, utcnow


def me() -> str:
    """This process, as a lease holder: host name and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def acquire(name: str, holder: str, ttl: float) -> bool:
    """Take or renew the lease ``name`` for ``ttl`` seconds. True when ``holder`` has
    it now; False when another holder's lease has not run out. Commits."""
    now = utcnow()
    until = now + timedelta(seconds=ttl)
    taken = db.session.execute(
        db.update(WorkerLease).where(WorkerLease.name == name, db.or_(
            WorkerLease.holder == holder, WorkerLease.expires_at < now))
        .values(holder=holder, beat_at=now, expires_at=until)
        .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    if taken == 1:
        return True
    if db.session.get(WorkerLease, name) is not None:
        return False
    db.session.add(WorkerLease(name=name, holder=holder, beat_at=now, expires_at=until))
    try:
        db.session.commit()
    except IntegrityError:  # another process inserted it first
        db.session.rollback()
        return False
    return True


def release(name: str, holder: str) -> None:
    """Give the lease up at once (a clean stop): another server need not wait."""
    db.session.execute(db.delete(WorkerLease).where(WorkerLease.name == name,
                                                    WorkerLease.holder == holder))
    db.session.commit()


def last_beat(name: str) -> datetime | None:
    """When the worker last beat (None: never, or it stopped cleanly)."""
    return db.session.execute(db.select(WorkerLease.beat_at)
                              .where(WorkerLease.name == name)).scalar()
