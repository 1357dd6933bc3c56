"""VM states read from the store the watcher keeps (services/watching.py): no host is
asked, so a page costs the same whatever the number of VMs and hosts, and a dead host
never makes it wait. Also the stream of changes open pages follow."""
from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Iterator

from ...extensions import db
from ...models import VM, Host, User
from ..access import VIEW, vms_visible_to
from .views import TRANSITIONAL, VMView


def addresses(vm: VM) -> list[str]:
    """Its fixed address, its DHCP leases and what its agent said (IPv4 first)."""
    found = [vm.ip_address] if vm.ip_address else []
    for stored in (vm.lease_addresses, vm.guest_addresses):
        if stored:
            try:
                found.extend(json.loads(stored))
            except ValueError:
                pass
    unique = list(dict.fromkeys(found))
    return sorted(unique, key=lambda a: (":" in a, unique.index(a)))


def state_of(vm: VM) -> tuple[str, bool]:
    """(state shown, host online) from the store."""
    online = vm.host.offline_since is None
    if vm.status in TRANSITIONAL:
        return f"{vm.status}…", online
    if not online:
        return "host offline", False
    return vm.live_state or "unknown", True


def views(vms: list[VM]) -> list[VMView]:
    out = []
    for vm in vms:
        state, online = state_of(vm)
        out.append(VMView(vm, state, online, addresses(vm), vm.live_at))
    return out


def live_map(vms: list[VM]) -> dict[str, dict[str, str]]:
    """{host uri: {domain name: state}} as the store has it, for hosts that answer (the
    shape of the hosts' own bulk answer: stuck states are settled the same way)."""
    out: dict[str, dict[str, str]] = {}
    for vm in vms:
        if vm.host.offline_since is not None:
            continue
        states = out.setdefault(vm.host.uri, {})
        if vm.live_state and vm.live_state != "missing":
            states[vm.domain_name] = vm.live_state
    return out


def filter_by_state(stmt, state: str):
    """``stmt`` (a select over VM) narrowed to the VMs shown in ``state``, in the
    database (an index on live_state): transitional ones show their transition."""
    not_busy = VM.status.not_in(TRANSITIONAL)
    online = db.select(Host.id).where(Host.offline_since.is_(None)).scalar_subquery()
    offline = db.select(Host.id).where(Host.offline_since.is_not(None)).scalar_subquery()
    if state == "host offline":
        return stmt.where(not_busy, VM.host_id.in_(offline))
    return stmt.where(not_busy, VM.host_id.in_(online), VM.live_state == state)


def changes(viewer: User, since: datetime | None, ids: list[int] | None,
            limit: int = 500) -> tuple[list[VMView], datetime | None]:
    """The VMs ``viewer`` may see (of ``ids``, when given; a group's manager the
    members' too) whose state changed after ``since``, and the new cursor."""
    stmt = vms_visible_to(viewer, db.select(VM), VIEW).order_by(VM.live_changed_at).limit(limit)
    if since is not None:
        stmt = stmt.where(VM.live_changed_at > since)
    else:
        stmt = stmt.where(VM.live_changed_at.is_not(None))
    if ids:
        stmt = stmt.where(VM.id.in_(ids))
    rows = db.session.execute(stmt).scalars().all()
    cursor = rows[-1].live_changed_at if rows else since
    return views(rows), cursor


def stream(viewer: User, ids: list[int] | None, *, last_id: str | None = None,
           seconds: float = 55.0, every: float = 0.5,
           keepalive: float = 15.0) -> Iterator[str]:
    """Server-sent events: one ``data:`` line of JSON per VM whose state changes, for
    ``seconds`` (the browser's EventSource then connects again by itself). It reads the
    store every ``every`` seconds: no host is asked, and nothing is held between reads.
    Without a watcher (the store is not kept) one ``poll`` event says to poll instead."""
    from .. import watching

    user_id = viewer.id
    if not watching.fresh():  # no watcher: the store is not kept; the page must poll
        db.session.rollback()
        yield "event: poll\ndata: {}\n\n"
        return
    since = _cursor(last_id)
    if since is None:
        since = db.session.execute(db.select(db.func.max(VM.live_changed_at))).scalar()
    db.session.rollback()
    # The cursor travels as the event id: a browser that connects again (the stream
    # ends after ``seconds``) sends it back, and no change in between is lost.
    yield f"retry: 1000\nid: {_id(since)}\n\n"
    end, quiet = time.monotonic() + seconds, time.monotonic()
    while time.monotonic() < end:
        viewer = db.session.get(User, user_id)
        if viewer is None or not viewer.active:
            return
        found, since = changes(viewer, since, ids)
        payload = [{"id": v.vm.id, "state": v.state, "actions": v.actions,
                    "addresses": v.addresses} for v in found]
        db.session.rollback()  # no transaction (or lock) held while waiting
        if payload:
            quiet = time.monotonic()
            yield f"id: {_id(since)}\ndata: {json.dumps(payload)}\n\n"
        elif time.monotonic() - quiet > keepalive:
            quiet = time.monotonic()
            yield ": still here\n\n"
        time.sleep(every)


def _id(cursor: datetime | None) -> str:
    return cursor.isoformat() if cursor else ""


def _cursor(last_id: str | None) -> datetime | None:
    """The cursor a browser sent back (Last-Event-ID), if it is one of ours."""
    if not last_id or len(last_id) > 40:
        return None
    try:
        return datetime.fromisoformat(last_id)
    except ValueError:
        return None
