"""Host maintenance (issue 14): a host's migration address; "Drain" (no new VMs, every
VM moved away by the "host.drain" task, with a summary of what could not move and why)
and "Undrain"; "Forget" an offline host with its VMs' records, remembering what it
still holds (models/maintenance.py: Remnant) to remove if it is ever added back."""
from __future__ import annotations

import ipaddress
import json
import logging
import re

from flask_babel import gettext as _, ngettext
from flask_babel import lazy_gettext as _l

from ..extensions import db
from ..models import VM, Host, ImageLocation, Leftover, Remnant, Task, User
from ..virt import VirtError
from . import Conflict, FieldError, NotAllowed, said, tasklist, tasks, transaction
from .hypervisors import hypervisor
from .settings import get_settings
from .vms import migration as vm_migration
from .vms import moving
from .vms.lost import record_lost
from .vms.lifecycle import _begin

log = logging.getLogger(__name__)

HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]"
                         r"([A-Za-z0-9-]{0,62}))*$")


def _admin(user: User, refusal: str) -> None:
    if not user.is_admin:
        raise NotAllowed(refusal)


@transaction
def set_migration_address(user: User, host: Host, address: str | None) -> Host:
    """Where the other hosts reach ``host`` for migrations (an IP address or a host
    name); empty: the host part of its URI."""
    _admin(user, _("Only the administrator sets migration addresses."))
    address = (address or "").strip()
    if address:
        try:
            address = str(ipaddress.ip_address(address))
        except ValueError:
            if not HOSTNAME_RE.match(address):
                raise FieldError(_("Enter an IP address or a host name (or nothing for the "
                                   "host part of its URI)."), "migration_address") from None
    host.migration_address = address or None
    db.session.commit()
    return host


def _vms_of(host: Host) -> list[VM]:
    return db.session.execute(db.select(VM).where(VM.host_id == host.id)
                              .order_by(VM.name, VM.id)).scalars().all()


# -- drain --------------------------------------------------------------------------
@transaction
def drain(user: User, host: Host) -> Task:
    """Stop ``host`` accepting VMs and move each of its VMs away (the "host.drain"
    task): running and paused ones live, shut-off ones offline, each to the host
    placement chooses. Raises Conflict when a drain is under way already."""
    _admin(user, _("Only the administrator drains hosts."))
    if tasklist.active_for("host", host.id):
        raise Conflict(_("%(host)s is being drained already; see its task.", host=host.name))
    if host.offline_since is not None:
        raise Conflict(_("%(host)s is offline: its VMs cannot be moved. Forget it, or drain "
                         "it when it is back.", host=host.name))
    host.draining = True
    db.session.commit()
    return tasks.start("host.drain", user, target_type="host", target_id=host.id,
                       target_name=host.name, args={"host_id": host.id})


@transaction
def undrain(user: User, host: Host) -> Host:
    """The host accepts VMs again (a drain under way is cancelled)."""
    _admin(user, _("Only the administrator drains hosts."))
    for task in tasklist.active_for("host", host.id):
        task.cancel_requested = True
    host.draining = False
    db.session.commit()
    return host


class _Part:
    """A task context for one VM's move inside a drain: its progress scaled into the
    drain's, its messages prefixed with the VM's name."""

    def __init__(self, ctx, args: dict, index: int, count: int, name: str):
        self.ctx, self.args, self.task = ctx, args, ctx.task
        self.base, self.span, self.name = index / count, 1 / count, name
        self.index, self.count = index + 1, count

    def report(self, progress=None, message=None, *, remaining=None, force=False):
        self.ctx.report(None if progress is None else self.base + progress * self.span,
                        None if message is None else
                        _l("%(index)s of %(count)s, %(name)s: %(message)s", index=self.index,
                           count=self.count, name=self.name, message=message),
                        remaining=None, force=force)

    def check(self):
        self.ctx.check()


class _Ledger:
    """Each VM's line in a drain, kept in the task's result while it runs (the host
    page and ``manage.py tasks show`` list them) and left there as its summary:
    "web-1: moved to h2 (live)", "web-2: moving to h3", "db-1: not moved: why",
    "web-3: waiting". Each line is "name: text" (drain_lines reads them back); the
    lines are messages (said.py), said in the reader's language."""

    def __init__(self, ctx, host: Host, names: list[str]):
        self.ctx, self.host = ctx, host
        self.lines = {name: _l("waiting") for name in names}
        self.waiting = set(names)
        self.moved: list[str] = []
        self.failed: list[tuple[str, str]] = []

    def note(self, name: str, text, *, moved: bool = False,
             failed: str | None = None) -> None:
        self.lines[name] = text
        self.waiting.discard(name)
        if moved:
            self.moved.append(name)
        if failed is not None:
            self.failed.append((name, failed))
        self.write()

    def write(self) -> None:
        self.ctx.task.result = said.store(self.text(), tasks.RESULT_LIMIT)
        db.session.commit()

    def head(self):
        figures = {"moved": len(self.moved), "count": len(self.lines), "host": self.host.name,
                   "failed": len(self.failed), "waiting": len(self.waiting)}
        if figures["failed"] and figures["waiting"]:
            return _l("%(moved)s of %(count)s VM(s) moved off %(host)s, %(failed)s could not "
                      "move, %(waiting)s waiting.", **figures)
        if figures["failed"]:
            return _l("%(moved)s of %(count)s VM(s) moved off %(host)s, %(failed)s could not "
                      "move.", **figures)
        if figures["waiting"]:
            return _l("%(moved)s of %(count)s VM(s) moved off %(host)s, %(waiting)s waiting.",
                      **figures)
        return _l("%(moved)s of %(count)s VM(s) moved off %(host)s.", **figures)

    def text(self) -> said.Joined:
        return said.Joined([self.head()] + [said.Joined([name, text], ": ")
                                            for name, text in self.lines.items()], "\n")


@tasks.kind("host.drain", _l("Drain a host"), attempts=1, timeout=24 * 3600)
def _drain(ctx: tasks.TaskContext) -> said.Joined:
    host = db.session.get(Host, ctx.args["host_id"])
    if host is None:
        raise tasks.Cancelled(_l("The host was removed."))
    vms = _vms_of(host)
    names = {vm.id: vm.name for vm in vms}
    vm_ids = list(names)
    ledger = _Ledger(ctx, host, list(names.values()))
    _note_move(ctx.task, None)   # "Try again" copies the arguments: no earlier move
    ledger.write()
    for index, vm_id in enumerate(vm_ids):
        vm, name = db.session.get(VM, vm_id), names[vm_id]
        if vm is None or vm.host_id != host.id:
            ledger.note(name, _l("deleted meanwhile") if vm is None else
                        _l("on %(host)s now (moved meanwhile)", host=vm.host.name))
            continue
        ctx.report(index / max(len(vm_ids), 1), _l("Moving %(name)s (%(index)s of "
                                                   "%(count)s).", name=name, index=index + 1,
                                                   count=len(vm_ids)), force=True)
        try:
            target, mode = _move_one(ctx, vm, index, len(vm_ids), ledger)
            ledger.note(name, _l("moved to %(host)s (live)", host=target) if mode == "live"
                        else _l("moved to %(host)s (offline)", host=target), moved=True)
        except tasks.Cancelled:
            db.session.rollback()
            ledger.note(name, _l("not moved: the drain was cancelled while it moved"),
                        failed="cancelled")
            raise tasks.Cancelled(_l("%(summary)s The drain was cancelled.",
                                     summary=ledger.head()))
        except Exception as exc:  # noqa: BLE001 - each VM's reason goes in the summary
            db.session.rollback()
            why = said.of(exc) if str(exc) else type(exc).__name__
            ledger.note(name, _l("not moved: %(reason)s", reason=why), failed=str(why))
            log.warning("drain of %s: %s not moved: %s", host.name, name, exc)
    if ledger.failed:
        raise Conflict(_l("%(summary)s See each VM's reason in the result.",
                          summary=ledger.head()))
    return ledger.text()


def last_drain(host: Host) -> Task | None:
    """The host's latest drain task (under way or ended), for its page."""
    return db.session.execute(db.select(Task).where(
        Task.kind == "host.drain", Task.target_type == "host", Task.target_id == host.id)
        .order_by(Task.id.desc()).limit(1)).scalar()


def drain_lines(task: Task | None) -> tuple[str, list[tuple[str, str]]]:
    """A drain's summary line and its (VM, what happened to it) rows, in the reader's
    language."""
    if task is None or not task.result:
        return "", []
    head, *rows = said.render(task.result).splitlines()
    return head, [tuple(row.split(": ", 1)) if ": " in row else (row, "") for row in rows]


def _move_one(ctx, vm: VM, index: int, count: int, ledger: _Ledger) -> tuple[str, str]:
    """Move one VM of a drained host, as the "vm.migrate" task would (same functions)."""
    if vm.status not in (VM.READY, VM.ERROR):
        raise Conflict(_l("busy (%(status)s)", status=vm.status))
    state = vm_migration._source_state(vm)
    if state in vm_migration.LIVE_STATES:
        mode = "live"
    elif state == "shut off":
        mode = "offline"
    else:
        raise Conflict(_l("it is %(state)s", state=state))
    vm_migration.check_disks(vm, mode)
    target = vm_migration.choose_target(vm)
    source = vm.host
    _note_move(ctx.task, {"vm_id": vm.id, "vm_name": vm.name, "target_id": target.id})
    ledger.note(vm.name, _l("moving to %(host)s (live)", host=target.name) if mode == "live"
                else _l("moving to %(host)s (offline)", host=target.name))
    _begin(vm, VM.MIGRATING)
    part = _Part(ctx, {"vm_id": vm.id, "source_id": source.id, "target_id": target.id,
                       "mode": mode}, index, count, vm.name)
    try:
        moving.move(part, vm, source, target, mode)
    except BaseException:
        db.session.rollback()
        vm = db.session.get(VM, vm.id)
        if vm is not None and vm.status == VM.MIGRATING:
            moving.stopped(part, "failed")
        raise
    finally:
        _note_move(ctx.task, None)
        db.session.commit()
    return target.name, mode


def _note_move(task: Task, move: dict | None) -> None:
    """The drain's move under way (its VM and target; None: none) in its task's
    arguments, where forget_host finds a VM moving to the host it would forget. Does
    not commit."""
    args = json.loads(task.args or "{}")
    args.pop("moving", None)
    if move is not None:
        args["moving"] = move
    task.args = json.dumps(args)


# -- forget -------------------------------------------------------------------------
def maintenance_view(host: Host) -> dict:
    """What the host page's maintenance card shows: the VMs a Forget loses, the tasks
    under way, and the latest drain with each VM's line."""
    last = last_drain(host)
    head, rows = drain_lines(last)
    return {"lost": lost_with(host), "tasks": tasklist.active_for("host", host.id),
            "drain": last, "drain_head": head, "drain_rows": rows}


def lost_with(host: Host) -> list[VM]:
    """The VMs lost when ``host`` is forgotten (for the confirmation)."""
    return _vms_of(host)


@transaction
def forget_host(user: User, host: Host) -> str:
    """Remove an offline host with its VMs: each becomes a lost VM its owner still
    sees (vms/lost.py), holding none of their quota. What the host still holds
    (domains, volumes, fixed addresses, earlier leftovers) is remembered by its URI and
    removed if it is ever added back. Refused while the host answers (drain it, or
    delete its VMs, and remove it) and while a VM moves to it."""
    _admin(user, _("Only the administrator forgets hosts."))
    if tasklist.active_for("host", host.id):
        raise Conflict(_("%(host)s has a task under way; cancel it first.", host=host.name))
    incoming, drains = _moving_to(host)
    if incoming:
        raise Conflict(ngettext("%(vms)s is moving to %(host)s; cancel the move first.",
                                "%(vms)s are moving to %(host)s; cancel the move first.",
                                len(incoming), vms=", ".join(incoming), host=host.name))
    if drains:
        moves = "; ".join(_("%(vm)s is moving to %(host)s (the drain of %(source)s)",
                            vm=vm_name, host=host.name, source=source)
                          for vm_name, source in drains)
        raise Conflict(_("%(moves)s: wait for the move, or cancel the drain, first.",
                         moves=moves))
    hv = hypervisor(host)
    try:
        hv.info()
    except VirtError:
        pass
    else:
        raise Conflict(_("%(host)s answers: drain it, or delete its VMs and remove it. Only "
                         "a host that is gone can be forgotten.", host=host.name))
    pool = get_settings().storage_pool
    vms = _vms_of(host)
    for vm in vms:
        if tasklist.active_for("vm", vm.id):
            raise Conflict(_("%(vm)s on %(host)s has a task under way; cancel it first.",
                             vm=vm.name, host=host.name))
    for vm in vms:
        _remember(host, Leftover.DOMAIN, "", vm.uuid, vm.name)
        for volume in vm.volume_names:
            _remember(host, Leftover.VOLUME, pool, volume, vm.name)
        if vm.ip_address and vm.network and vm.mac:
            _remember(host, Leftover.ADDRESS, vm.network, f"{vm.mac} {vm.ip_address}",
                      vm.name)
        record_lost(vm, host)
        db.session.delete(vm)
    for row in db.session.execute(db.select(Leftover).where(
            Leftover.host_id == host.id)).scalars().all():
        _remember(host, row.kind, row.pool, row.name, "")
        db.session.delete(row)
    db.session.execute(db.delete(ImageLocation).where(ImageLocation.host_id == host.id))
    name, names = host.name, [f"{vm.name} ({vm.owner.username})" for vm in vms]
    db.session.delete(host)
    db.session.commit()
    hv.forget()
    log.warning("host %s forgotten with %d VM(s), now lost: %s", name, len(names),
                ", ".join(names))
    if names:
        return _("%(host)s was forgotten. %(count)s VM(s) are lost with it, marked so for "
                 "their owners (their quota freed): %(vms)s. What it still holds is removed "
                 "if it is ever added back.", host=name, count=len(names),
                 vms=", ".join(names))
    return _("%(host)s was forgotten. What it still holds is removed if it is ever added "
             "back.", host=name)


def _moving_to(host: Host) -> tuple[list[str], list[tuple[str, str]]]:
    """The VMs moving to ``host`` now: by their own "vm.migrate" task (queued or
    running: their names), and by the drain of another host (its move under way:
    (VM name, drained host name))."""
    incoming, drains = [], []
    for task in db.session.execute(db.select(Task).where(
            Task.kind.in_(("vm.migrate", "host.drain")),
            Task.state.in_(("queued", "running")))).scalars():
        args = json.loads(task.args or "{}")
        if task.kind == "vm.migrate" and args.get("target_id") == host.id:
            incoming.append(task.target_name)
        move = args.get("moving") or {}
        if task.kind == "host.drain" and task.state == "running" \
                and move.get("target_id") == host.id:
            drains.append((move.get("vm_name", "a VM"), task.target_name))
    return incoming, drains


def _remember(host: Host, kind: str, pool: str, name: str, vm_name: str) -> None:
    db.session.add(Remnant(uri=host.uri, host_name=host.name, kind=kind, pool=pool,
                           name=name, vm_name=vm_name))


def adopt_remnants(host: Host) -> int:
    """A host added again with a forgotten host's URI: what that one kept becomes its
    leftovers (removed as soon as it answers). Does not commit."""
    rows = db.session.execute(db.select(Remnant).where(Remnant.uri == host.uri)).scalars().all()
    for row in rows:
        db.session.add(Leftover(host_id=host.id, kind=row.kind, pool=row.pool, name=row.name,
                                last_error=_("kept by the forgotten host %(host)s",
                                             host=row.host_name)))
        db.session.delete(row)
    return len(rows)


def remnants_of(uri: str) -> list[Remnant]:
    return db.session.execute(db.select(Remnant).where(Remnant.uri == uri)
                              .order_by(Remnant.id)).scalars().all()
