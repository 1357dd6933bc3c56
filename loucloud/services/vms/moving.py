"""The "vm.migrate" task (issue 14): a VM moved to another host, live (its overlays
copied by QEMU while it runs) or offline (its volumes streamed), and — whatever
happened, a failure, a cancel, a host killed or cut off in the middle — where it runs
afterwards, which is what LouCloud's record then says (``settle``)."""
from __future__ import annotations

import logging
import threading
import time

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ...extensions import db
from ...models import VM, Host, utcnow
from ...virt import VirtError
from .. import Conflict, ServiceError, said, tasks
from ..hypervisors import hypervisor
from ..settings import get_settings
from . import placement
from .create import GIB
from .lifecycle import _begin, _end
from .offline import move_offline
from .settling import LIVE, settle
from .targets import (base_image_on, cdrom_paths, check_network, clear_target, move_record,
                      reserve_on, undo_target)
from .views import state_said

log = logging.getLogger(__name__)

POLL = 0.5
STALL_SECONDS = 60       # no byte moved for this long: the migration is abandoned
MIGRATE_BOUND = 6 * 3600


def _hosts(ctx):
    vm = db.session.get(VM, ctx.args["vm_id"])
    return (vm, db.session.get(Host, ctx.args["source_id"]),
            db.session.get(Host, ctx.args["target_id"]))


@tasks.kind("vm.migrate", _l("Move a VM to another host"), attempts=1, timeout=MIGRATE_BOUND,
            on_stop=lambda ctx, why: stopped(ctx, why))
def _migrate(ctx: tasks.TaskContext) -> str:
    vm, source, target = _hosts(ctx)
    if vm is None:
        raise tasks.Cancelled(_l("The VM was deleted."))
    if target is None or source is None:
        raise ServiceError(_l("The source or the target host was removed."))
    if vm.host_id != source.id:
        raise ServiceError(_l("%(name)s is on %(host)s now, not %(source)s.", name=vm.name,
                              host=vm.host.name, source=source.name))
    if vm.status != VM.MIGRATING:
        # "Try again" on an ended move: the target checked again, the VM held again
        # (compare-and-set, as the first start did), or the task refuses.
        if target.draining or target.offline_since is not None:
            raise ServiceError(_l("%(host)s is being drained.", host=target.name)
                               if target.draining else
                               _l("%(host)s is offline.", host=target.name))
        _begin(vm, VM.MIGRATING)
    return move(ctx, vm, source, target, ctx.args["mode"])


def move(ctx, vm: VM, source: Host, target: Host, mode: str) -> str:
    """Move the VM (held "migrating"), live or offline: the "vm.migrate" task's work,
    and a drain's for each of its VMs. Returns what happened, for the task's result."""
    ctx.report(0.0, _l("Preparing %(host)s.", host=target.name), force=True)
    if mode == "live":
        return _live(ctx, vm, source, target)
    return move_offline(ctx, vm, source, target)


# -- live ---------------------------------------------------------------------------
def _prepare_live(ctx, vm: VM, source: Host, target: Host, plan) -> tuple[list, list]:
    """Overlays (and the seed) on the target; returns (created volumes, devices to copy)."""
    image, pool = vm.image, get_settings().storage_pool
    src, dst = hypervisor(source), hypervisor(target)
    base_image_on(ctx, vm, target)
    clear_target(vm, target, vm.volume_names)
    created: list[str] = []
    dst.ensure_pool(pool)
    for disk in vm.disks:
        created.append(disk.volume_name)
        if disk.system and not image.is_iso:
            dst.create_overlay(pool, disk.volume_name, disk.size_gib * GIB,
                               image.path_on(target.id), image.format)
        else:
            dst.create_blank(pool, disk.volume_name, disk.size_gib * GIB)
    if vm.seed_volume:
        created.append(vm.seed_volume)
        src.copy_volume_to(dst, pool, vm.seed_volume)
    paths = {d.volume_path for d in vm.disks if d.volume_path}
    devices = [d.target for d in plan.disks
               if d.device == "disk" and not d.readonly and d.path in paths]
    return created, devices


def _live(ctx, vm: VM, source: Host, target: Host) -> str:
    src, dst = hypervisor(source), hypervisor(target)
    plan = src.migration_plan(vm.uuid)
    if plan.state not in LIVE:
        raise Conflict(_l("%(name)s is %(state)s now; nothing to move live.", name=vm.name,
                          state=state_said(plan.state)))
    check_network(vm, target)
    created, reserved = [], False
    try:
        created, devices = _prepare_live(ctx, vm, source, target, plan)
        reserved = reserve_on(vm, target)
        paths = cdrom_paths(vm, source, target)
        listen = placement.vnc_listen_for(target)
        dest_xml = dst.retarget_xml(plan.live_xml, listen, paths)
        persist_xml = dst.retarget_xml(plan.persistent_xml, listen, paths)
    except BaseException:
        undo_target(vm, target, created, reserved)
        raise
    from .migration import migration_address
    address = migration_address(target)
    outcome: dict = {}

    def run() -> None:
        try:
            src.migrate_live(vm_uuid, dst, uri=f"tcp://{address}", listen=address,
                             disks=devices, dest_xml=dest_xml, persist_xml=persist_xml,
                             timeout=MIGRATE_BOUND)
        except BaseException as exc:  # noqa: BLE001 - reported by the task below
            outcome["error"] = exc
    vm_uuid = vm.uuid
    thread = threading.Thread(target=run, name=f"migrate-{vm.name}", daemon=True)
    thread.start()
    stopped: BaseException | None = None
    try:
        _follow(ctx, vm, src, thread)
    except (tasks.Cancelled, tasks.TimedOut, _Stalled) as exc:
        stopped = exc
        try:
            src.abort_migration(vm_uuid)
        except VirtError as err:
            log.warning("abort of %s's migration: %s", vm.name, err)
        thread.join(120)
    call = None if thread.is_alive() else ("failed" if "error" in outcome else "succeeded")
    try:
        where, state = settle(vm, source, target, was=plan.state, call=call)
    except Exception:
        _end(vm, VM.ERROR, _l("Migration to %(host)s: where %(name)s runs could not be "
                              "confirmed.", host=target.name, name=vm.name))
        raise
    if where == "target":
        move_record(vm, source, target, state)
        return _l("%(name)s runs on %(host)s now (moved live from %(source)s).",
                  name=vm.name, host=target.name, source=source.name)
    if where == "source":
        undo_target(vm, target, created, reserved)
    # "unknown": the target may hold the only copy (the source undefined it, the target
    # did not answer): nothing is removed on either host; the VM waits in error.
    _end(vm, VM.READY if where == "source" else VM.ERROR,
         None if where == "source" else _l("Migration to %(host)s: where %(name)s runs "
                                           "could not be confirmed; nothing was removed "
                                           "from %(source)s or %(host)s.", host=target.name,
                                           name=vm.name, source=source.name))
    why = stopped or outcome.get("error")
    text = _l("%(name)s stays on %(source)s: %(why)s", name=vm.name, source=source.name,
              why=_l("cancelled.") if isinstance(why, tasks.Cancelled)
              else said.of(why) if str(why) else type(why).__name__)
    if isinstance(stopped, tasks.Cancelled):
        raise tasks.Cancelled(text)
    raise ServiceError(text)


class _Stalled(Exception):
    pass


def _follow(ctx, vm: VM, src, thread: threading.Thread) -> None:
    """Report libvirt's job figures while the migration thread runs; raise _Stalled when
    nothing moved for STALL_SECONDS (a link cut between the hosts)."""
    last, moved_at, started = -1, time.monotonic(), time.monotonic()
    while thread.is_alive():
        thread.join(POLL)
        try:
            job = src.migration_job(vm.uuid)
        except VirtError:
            job = None
        now = time.monotonic()
        if job is not None and job.data_total:
            if job.data_processed != last:
                last, moved_at = job.data_processed, now
            rate = job.data_processed / max(now - started, 0.1)
            remaining = job.data_remaining / rate if rate > 0 else None
            ctx.report(min(job.data_processed / job.data_total, 0.99),
                       _l("Copying: %(done)s of %(total)s MiB (disks %(disks_done)s of "
                          "%(disks_total)s MiB, memory %(memory)s MiB).",
                          done=job.data_processed // 2**20, total=job.data_total // 2**20,
                          disks_done=job.disk_processed // 2**20,
                          disks_total=job.disk_total // 2**20,
                          memory=job.memory_processed // 2**20), remaining=remaining)
        else:
            ctx.report(None, _l("Migrating."))
        vm.status_since = utcnow()   # a long migration is not a stuck action
        if now - moved_at > STALL_SECONDS and thread.is_alive():
            raise _Stalled(_l("nothing moved for %(seconds)s s (the link between the "
                              "hosts?); the migration was cancelled", seconds=STALL_SECONDS))


def stopped(ctx, why: str) -> None:
    """After a failure, a cancel or a dead worker: the record matches where it runs. A
    task cancelled while still queued (no attempt ran) touched neither host: the VM's
    status goes back at once, without asking a host (the cancel is a web request)."""
    vm, source, target = _hosts(ctx)
    if vm is None or vm.status != VM.MIGRATING:
        return
    if ctx.task.attempts == 0 and ctx.task.kind == "vm.migrate":
        _end(vm, ctx.args.get("previous", VM.READY), vm.last_error)
        return
    if source is None or target is None or vm.host_id != source.id:
        return
    try:
        where, state = settle(vm, source, target, was="running"
                              if ctx.args["mode"] == "live" else "shut off", wait=30)
    except Exception:
        _end(vm, VM.ERROR, _l("Migration interrupted; where it runs could not be "
                              "confirmed."))
        raise
    if where == "target":
        move_record(vm, source, target, state)
        return
    _end(vm, VM.READY if where == "source" else VM.ERROR,
         None if where == "source" else _l("Migration interrupted; where it runs could "
                                           "not be confirmed."))

