"""The "vm.migrate" task (issue 14): a VM moved to another host, live (its overlays
copied by QEMU while it runs) or offline (its volumes streamed), and — whatever
happened, a failure, a cancel, a host killed or cut off in the middle — where it runs
afterwards, which is what LouCloud's record then says (``settle``)."""
from __future__ import annotations

import logging
import threading
import time

from ...extensions import db
from ...models import VM, Host, ImageLocation, Leftover, utcnow
from ...virt import AlreadyExists, VirtError
from .. import Conflict, ServiceError, leftovers, tasks, watching
from .. import networks as network_service
from ..hypervisors import hypervisor
from ..settings import get_settings
from . import placement
from .lifecycle import _begin, _end
from .settling import LIVE, settle
from .state import forget_states

log = logging.getLogger(__name__)

GIB = 1024 ** 3
POLL = 0.5
STALL_SECONDS = 60       # no byte moved for this long: the migration is abandoned
MIGRATE_BOUND = 6 * 3600


def _hosts(ctx):
    vm = db.session.get(VM, ctx.args["vm_id"])
    return (vm, db.session.get(Host, ctx.args["source_id"]),
            db.session.get(Host, ctx.args["target_id"]))


@tasks.kind("vm.migrate", "Move a VM to another host", attempts=1, timeout=MIGRATE_BOUND,
            on_stop=lambda ctx, why: _stopped(ctx, why))
def _migrate(ctx: tasks.TaskContext) -> str:
    vm, source, target = _hosts(ctx)
    if vm is None:
        raise tasks.Cancelled("The VM was deleted.")
    if target is None or source is None:
        raise ServiceError("The source or the target host was removed.")
    if vm.host_id != source.id:
        raise ServiceError(f"{vm.name} is on {vm.host.name} now, not {source.name}.")
    if vm.status != "migrating":
        # "Try again" on an ended move: the target checked again, the VM held again
        # (compare-and-set, as the first start did), or the task refuses.
        if target.draining or target.offline_since is not None:
            raise ServiceError(f"{target.name} is "
                               f"{'being drained' if target.draining else 'offline'}.")
        _begin(vm, "migrating")
    ctx.report(0.0, f"Preparing {target.name}.", force=True)
    if ctx.args["mode"] == "live":
        return _live(ctx, vm, source, target)
    return _offline(ctx, vm, source, target)


# -- preparing the target ------------------------------------------------------------
def _volumes(vm: VM) -> list[tuple[str, int, bool]]:
    """(volume, size GiB, is the system disk) of every disk of the VM."""
    return [(d.volume_name, d.size_gib, d.system) for d in vm.disks]


def _base_image(ctx, vm: VM, target: Host) -> None:
    """The base image onto the target when it lacks it (the image distribution's copy)."""
    image = vm.image
    if image.is_iso or image.present_on(target.id):
        return
    from ..imagecopy import copy_stored
    loc = next((loc for loc in image.locations if loc.host_id == target.id), None)
    if loc is None:
        image.locations.append(ImageLocation(host_id=target.id, present=False,
                                             copy_state="queued"))
    db.session.commit()
    ctx.report(0.0, f"Copying the image {image.name} to {target.name} first.", force=True)
    copy_stored(ctx, image, {target.id})
    db.session.refresh(image)
    if not image.present_on(target.id):
        loc = next(loc for loc in image.locations if loc.host_id == target.id)
        raise ServiceError(f"The image {image.name} could not be copied to {target.name}: "
                           f"{loc.error}")


def _clear_target(vm: VM, target: Host, names: list[str]) -> None:
    """What an earlier attempt left on the target is replaced now."""
    hv, pool = hypervisor(target), get_settings().storage_pool
    for name in names:
        leftovers.forget(target.id, Leftover.VOLUME, name)
        hv.delete_volume(pool, name)
    leftovers.forget(target.id, Leftover.DOMAIN, vm.uuid)


def check_network(vm: VM, target: Host):
    """The target's network of the VM's card (None: the card is not on a network).
    Raises Conflict when the target has no such network active."""
    if vm.nic_kind != "network" or not vm.network:
        return None
    net = next((n for n in hypervisor(target).networks() if n.name == vm.network), None)
    if net is None or not net.active:
        raise Conflict(f"{target.name} has no active network {vm.network} for "
                       f"{vm.name}'s card.")
    return net


def _reserve_on(vm: VM, target: Host) -> bool:
    """The VM's fixed address reserved on the target's network of the same name (the
    same address). Whether one was reserved."""
    net = check_network(vm, target)
    if net is None or not (vm.ip_address and vm.mac):
        return False
    if not net.desc.managed:
        return False
    try:
        network_service.reserve_address(target, net.desc, vm.mac, vm.ip_address)
    except (ServiceError, AlreadyExists):
        # this MAC's entry from an earlier attempt: replaced
        hypervisor(target).release_address(vm.network, vm.mac, vm.ip_address)
        network_service.reserve_address(target, net.desc, vm.mac, vm.ip_address)
    return True


def _undo_target(vm: VM, target: Host, created: list[str], reserved: bool) -> None:
    """Remove what the migration made on the target (it did not move); what a host out
    of reach keeps is remembered and removed when it answers."""
    hv, pool = hypervisor(target), get_settings().storage_pool
    held = any(row.kind == Leftover.DOMAIN and row.name == vm.uuid
               for row in leftovers.pending({target.id}))   # settle() could not remove it
    steps = [] if held else [(Leftover.DOMAIN, "", vm.uuid, lambda: hv.remove(vm.uuid))]
    steps += [(Leftover.VOLUME, pool, n, lambda n=n: hv.delete_volume(pool, n))
              for n in created]
    if reserved:
        steps.append((Leftover.ADDRESS, vm.network, f"{vm.mac} {vm.ip_address}",
                      lambda: hv.release_address(vm.network, vm.mac, vm.ip_address)))
    for kind, pool_name, name, remove in steps:
        try:
            remove()
        except VirtError as exc:
            leftovers.remember(target, kind, name, pool_name, str(exc))


def _tidy_source(vm: VM, source: Host, names: list[str], ip: tuple | None) -> None:
    """After the move: the source's volumes and fixed address go (or are remembered)."""
    hv, pool = hypervisor(source), get_settings().storage_pool
    steps = [(Leftover.VOLUME, pool, n, lambda n=n: hv.delete_volume(pool, n))
             for n in names]
    if ip:
        network, mac, addr = ip
        steps.append((Leftover.ADDRESS, network, f"{mac} {addr}",
                      lambda: hv.release_address(network, mac, addr)))
    for kind, pool_name, name, remove in steps:
        try:
            remove()
        except VirtError as exc:
            leftovers.remember(source, kind, name, pool_name, str(exc))


def _move_record(vm: VM, source: Host, target: Host, state: str) -> None:
    ip = (vm.network, vm.mac, vm.ip_address) if vm.ip_address and vm.network else None
    vm.host_id = target.id
    db.session.flush()
    db.session.refresh(vm)
    watching.note_state(vm, state)
    _end(vm)
    forget_states(source)
    forget_states(target)
    names = [n for n, _s, _sys in _volumes(vm)] + ([vm.seed_volume] if vm.seed_volume else [])
    _tidy_source(vm, source, names, ip)
    log.info("VM %s moved from %s to %s", vm.name, source.name, target.name)


# -- live ---------------------------------------------------------------------------
def _prepare_live(ctx, vm: VM, source: Host, target: Host, plan) -> tuple[list, list]:
    """Overlays (and the seed) on the target; returns (created volumes, devices to copy)."""
    image, pool = vm.image, get_settings().storage_pool
    src, dst = hypervisor(source), hypervisor(target)
    _base_image(ctx, vm, target)
    names = [n for n, _s, _sys in _volumes(vm)]
    _clear_target(vm, target, names + ([vm.seed_volume] if vm.seed_volume else []))
    created: list[str] = []
    dst.ensure_pool(pool)
    for name, size, system in _volumes(vm):
        created.append(name)
        if system and not image.is_iso:
            dst.create_overlay(pool, name, size * GIB, image.path_on(target.id), image.format)
        else:
            dst.create_blank(pool, name, size * GIB)
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
        raise Conflict(f"{vm.name} is {plan.state} now; nothing to move live.")
    check_network(vm, target)
    created, reserved = [], False
    try:
        created, devices = _prepare_live(ctx, vm, source, target, plan)
        reserved = _reserve_on(vm, target)
        paths = _cdrom_paths(vm, source, target)
        listen = placement.vnc_listen_for(target)
        dest_xml = dst.retarget_xml(plan.live_xml, listen, paths)
        persist_xml = dst.retarget_xml(plan.persistent_xml, listen, paths)
    except BaseException:
        _undo_target(vm, target, created, reserved)
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
        _end(vm, VM.ERROR, f"Migration to {target.name}: where {vm.name} runs could not "
                           "be confirmed.")
        raise
    if where == "target":
        _move_record(vm, source, target, state)
        return f"{vm.name} runs on {target.name} now (moved live from {source.name})."
    if where == "source":
        _undo_target(vm, target, created, reserved)
    # "unknown": the target may hold the only copy (the source undefined it, the target
    # did not answer): nothing is removed on either host; the VM waits in error.
    _end(vm, VM.READY if where == "source" else VM.ERROR,
         None if where == "source" else f"Migration to {target.name}: where {vm.name} "
                                        "runs could not be confirmed; nothing was removed "
                                        f"from {source.name} or {target.name}.")
    why = stopped or outcome.get("error")
    text = (f"{vm.name} stays on {source.name}: " + (
        "cancelled." if isinstance(why, tasks.Cancelled) else str(why) or type(why).__name__))
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
                       f"Copying: {job.data_processed // 2**20} of "
                       f"{job.data_total // 2**20} MiB (disks {job.disk_processed // 2**20}"
                       f" of {job.disk_total // 2**20} MiB, memory "
                       f"{job.memory_processed // 2**20} MiB).", remaining=remaining)
        else:
            ctx.report(None, "Migrating.")
        vm.status_since = utcnow()   # a long migration is not a stuck action
        if now - moved_at > STALL_SECONDS and thread.is_alive():
            raise _Stalled(f"nothing moved for {STALL_SECONDS} s (the link between the "
                           "hosts?); the migration was cancelled")


def _cdrom_paths(vm: VM, source: Host, target: Host) -> dict[str, str]:
    image = vm.cdrom_image
    if image is None:
        return {}
    if not image.present_on(target.id):
        raise Conflict(f"{target.name} lacks the install medium {image.name} in "
                       f"{vm.name}'s drive; eject it first.")
    return {image.path_on(source.id): image.path_on(target.id)}


def _stopped(ctx, why: str) -> None:
    """After a failure, a cancel or a dead worker: the record matches where it runs."""
    vm, source, target = _hosts(ctx)
    if vm is None or vm.status != "migrating" or source is None or target is None:
        return
    if vm.host_id != source.id:
        return
    try:
        where, state = settle(vm, source, target, was="running"
                              if ctx.args["mode"] == "live" else "shut off", wait=30)
    except Exception:
        _end(vm, VM.ERROR, "Migration interrupted; where it runs could not be confirmed.")
        raise
    if where == "target":
        _move_record(vm, source, target, state)
        return
    _end(vm, VM.READY if where == "source" else VM.ERROR,
         None if where == "source" else "Migration interrupted; where it runs could not "
                                        "be confirmed.")


from .offline import _offline  # noqa: E402 (the offline move, in its own module)
