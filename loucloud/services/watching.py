"""The watcher: one process per LouCloud installation (a lease elects it among the
servers) that keeps every VM's live state and every host's health in the database, from
libvirt's events and a bulk sync at every (re)connect and every full-sync interval, and
each VM's DHCP addresses from one leases call per network per host. Pages read the
store and never ask a host (see vms/state.py); while the watcher's beat is fresh.

Domains LouCloud did not create are not its business: only rows of ours are written."""
from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timedelta, timezone

from flask import Flask, g, has_request_context

from ..extensions import db
from ..models import VM, Host, utcnow
from ..virt import VirtError
from ..virt.watch import GONE, DomainState, HostWatch
from . import leases
from .hypervisors import hypervisor
from .settings import get_settings

log = logging.getLogger(__name__)

LEASE = "watcher"
BEAT_SECONDS = 2.0
STALE_AFTER = timedelta(seconds=10)   # pages fall back to asking hosts after this
LEASES_EVERY = 5.0                    # DHCP leases read again (addresses)


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc).replace(tzinfo=None)


def fresh() -> bool:
    """Whether the watcher beats: then the store's states are the truth for pages.
    Asked once per request (a page asks in several places)."""
    beat = last_beat()
    return beat is not None and utcnow() - beat < STALE_AFTER


def last_beat() -> datetime | None:
    if has_request_context():
        if "watcher_beat" not in g:
            g.watcher_beat = leases.last_beat(LEASE)
        return g.watcher_beat
    return leases.last_beat(LEASE)


# -- writing the store ----------------------------------------------------------------
def _updates(rows, states: dict[str, DomainState], at: datetime) -> list[dict]:
    out = []
    for vm_id, uuid, old in rows:
        found = states.get(uuid)
        state, reason = (found.state, found.reason) if found else ("missing", "")
        if state == GONE:
            state = "missing"
        values = {"id": vm_id, "live_at": at}
        if state != old:
            values.update(live_state=state, live_reason=reason, live_since=at,
                          live_changed_at=utcnow(), live_event=found.event if found else "")
        out.append(values)
    return out


def apply_sync(uri: str, states: dict[str, DomainState], at: datetime) -> int:
    """Every VM of the host gets what the sync read (missing when its domain is not
    there). Returns how many changed."""
    host_id = db.session.execute(db.select(Host.id).where(Host.uri == uri)).scalar()
    if host_id is None:
        return 0
    # A VM being moved between hosts is its migration's to write (vms/moving.py).
    rows = db.session.execute(db.select(VM.id, VM.uuid, VM.live_state)
                              .where(VM.host_id == host_id, VM.status != VM.MIGRATING)).all()
    updates = _updates(rows, states, at)
    if updates:
        db.session.execute(db.update(VM), updates)
    db.session.commit()
    return sum(1 for u in updates if "live_state" in u)


def apply_change(uri: str, state: DomainState) -> bool:
    """One VM's state from an event. Returns whether it changed."""
    row = db.session.execute(
        db.select(VM.id, VM.uuid, VM.live_state).join(Host, VM.host_id == Host.id)
        .where(Host.uri == uri, VM.uuid == state.uuid, VM.status != VM.MIGRATING)).first()
    if row is None:
        return False  # not a domain of ours
    updates = _updates([row], {state.uuid: state}, _dt(state.at))
    db.session.execute(db.update(VM), updates)
    db.session.commit()
    return "live_state" in updates[0]


def apply_health(uri: str, online: bool, error: str | None) -> None:
    """The host's health, as pages show it: offline since when, and why."""
    host = db.session.execute(db.select(Host).where(Host.uri == uri)).scalar()
    if host is None:
        return
    if online and (host.offline_since is not None or host.last_error):
        host.offline_since, host.last_error = None, None
    elif not online:
        if host.offline_since is None:
            host.offline_since = utcnow()
        host.last_error = (error or "not answering")[:500]
    db.session.commit()


def note_state(vm: VM, state: str, reason: str = "") -> None:
    """What an action just did to a VM (its host said so), in the store at once: the
    page after the click shows it without waiting for the event. The reason is set even
    when the state stays (a rebuilt VM shut off before and after holds no saved state
    any more). Does not commit."""
    now = utcnow()
    if vm.live_state != state or vm.live_reason != reason:
        if vm.live_state != state:
            vm.live_since = now
        vm.live_state, vm.live_reason = state, reason
        vm.live_changed_at, vm.live_event = now, "action"
    vm.live_at = now


def refresh_addresses(host: Host) -> int:
    """The DHCP leases of the networks the host's VMs are on, into their rows (one
    leases call per network). Returns how many rows changed."""
    rows = db.session.execute(db.select(VM.id, VM.mac, VM.network, VM.lease_addresses)
                              .where(VM.host_id == host.id, VM.nic_kind == "network",
                                     VM.mac.is_not(None))).all()
    names = sorted({r.network for r in rows if r.network})
    if not names:
        return 0
    found = hypervisor(host).leases(names)
    by_mac: dict[str, list[str]] = {}
    for name in names:
        for lease in found.get(name, []):
            by_mac.setdefault(lease.mac, []).append(lease.ip)
    updates = []
    for row in rows:
        value = json.dumps(by_mac.get(row.mac.lower(), []))
        if value != (row.lease_addresses or "[]"):
            updates.append({"id": row.id, "lease_addresses": value})
    if updates:
        db.session.execute(db.update(VM), updates)
    db.session.commit()
    return len(updates)


class StoreSink:
    """What a HostWatch learns, written to the store (each call in its own app
    context and transaction: watches call from their own threads)."""

    def __init__(self, app: Flask):
        self.app = app
        self.events = 0
        self.latencies: list[float] = []   # event to store, seconds (for figures)

    def synced(self, uri, states, at) -> None:
        with self.app.app_context():
            changed = apply_sync(uri, states, _dt(at))
            db.session.remove()
        log.info("synced %s: %d domains, %d changed", uri, len(states), changed)

    def changed(self, uri, state) -> None:
        with self.app.app_context():
            apply_change(uri, state)
            db.session.remove()
        self.events += 1
        self.latencies.append(time.time() - state.at)
        del self.latencies[:-1000]

    def health(self, uri, online, error) -> None:
        with self.app.app_context():
            apply_health(uri, online, error)
            db.session.remove()
        if not online:
            log.warning("host %s: %s", uri, error)


# -- the process -----------------------------------------------------------------------
def run(app: Flask, stop: threading.Event, *, holder: str | None = None) -> None:
    """The watcher's loop: holds the lease (or waits for it), keeps one HostWatch per
    registered host, beats, reads leases and asks for a full sync on the interval."""
    holder = holder or leases.me()
    sink = StoreSink(app)
    watches: dict[str, HostWatch] = {}
    last_sync = last_leases = time.monotonic()
    try:
        while not stop.is_set():
            with app.app_context():
                try:
                    leader = leases.acquire(LEASE, holder, ttl=STALE_AFTER.total_seconds())
                    hosts = db.session.execute(db.select(Host)).scalars().all() if leader else []
                    interval = get_settings().full_sync_seconds
                    _follow(hosts, watches, sink)
                    now = time.monotonic()
                    if leader and now - last_sync >= interval:
                        for watch in watches.values():
                            watch.resync()
                        last_sync = now
                    if leader and now - last_leases >= LEASES_EVERY:
                        _addresses(hosts)
                        last_leases = now
                except Exception:  # noqa: BLE001 - a watcher that dies shows nothing
                    db.session.rollback()
                    log.exception("watcher cycle failed")
                finally:
                    db.session.remove()
            stop.wait(BEAT_SECONDS)
    finally:
        for watch in watches.values():
            watch.stop()
        with app.app_context():
            leases.release(LEASE, holder)
            db.session.remove()


def _follow(hosts: list[Host], watches: dict[str, HostWatch], sink: StoreSink) -> None:
    wanted = {h.uri for h in hosts}
    for uri in list(watches):
        if uri not in wanted:
            watches.pop(uri).stop()
    for uri in wanted - set(watches):
        watches[uri] = HostWatch(uri, sink).start()


def _addresses(hosts: list[Host]) -> None:
    for host in hosts:
        if host.offline_since is not None:
            continue
        try:
            refresh_addresses(host)
        except VirtError as exc:
            log.info("leases of %s not read: %s", host.name, exc)
