"""The offline move of a shut-off VM (part of the "vm.migrate" task, vms/moving.py):
each volume streamed from the source's pool into the target's (libvirt's download and
upload streams: no shared storage, no SSH), the domain defined on the target from its
persistent XML (the target's VNC address), then undefined on the source."""
from __future__ import annotations

import logging
import threading

from flask_babel import lazy_gettext as _l

from ...models import VM, Host
from ...virt import VirtError
from .. import Conflict, ServiceError, said
from ..hypervisors import hypervisor
from ..settings import get_settings
from . import placement
from .lifecycle import _end
from .targets import (base_image_on, cdrom_paths, check_network, clear_target, move_record,
                      reserve_on, undo_target)
from .views import state_said

log = logging.getLogger(__name__)


class _Stop(Exception):
    pass


def move_offline(ctx, vm: VM, source: Host, target: Host) -> str:
    src, dst = hypervisor(source), hypervisor(target)
    pool = get_settings().storage_pool
    plan = src.migration_plan(vm.uuid)
    if plan.state != "shut off":
        raise Conflict(_l("%(name)s is %(state)s now; an offline move needs it shut off.",
                          name=vm.name, state=state_said(plan.state)))
    check_network(vm, target)
    names = vm.volume_names
    created, reserved = [], False
    try:
        base_image_on(ctx, vm, target)
        clear_target(vm, target, names)
        dst.ensure_pool(pool)
        sizes = {n: src.volume_size(pool, n) for n in names}
        total, before = max(sum(sizes.values()), 1), 0
        for name in names:
            created.append(name)
            _copy_one(ctx, src, dst, pool, name, before, total)
            before += sizes[name]
        reserved = reserve_on(vm, target)
        xml = dst.retarget_xml(plan.persistent_xml, placement.vnc_listen_for(target),
                               cdrom_paths(vm, source, target))
        ctx.report(0.99, _l("Defining %(name)s on %(host)s.", name=vm.name, host=target.name),
                   force=True)
        dst.define_xml(xml)
        if dst.locate(vm.uuid) != "shut off":
            raise ServiceError(_l("%(host)s did not keep %(name)s's definition.",
                                  host=target.name, name=vm.name))
    except BaseException as exc:
        undo_target(vm, target, created, reserved)
        _end(vm)
        if isinstance(exc, VirtError):
            raise ServiceError(_l("%(name)s stays on %(source)s: %(why)s", name=vm.name,
                                  source=source.name, why=said.of(exc))) from None
        raise
    try:
        src.remove(vm.uuid)
    except VirtError as exc:
        # Defined on both: the target's is the one now; the source's is a leftover.
        from .. import leftovers
        from ...models import Leftover
        leftovers.remember(source, Leftover.DOMAIN, vm.uuid, "", str(exc))
    move_record(vm, source, target, "shut off")
    return _l("%(name)s was moved (shut off) from %(source)s to %(host)s.", name=vm.name,
              source=source.name, host=target.name)


def _copy_one(ctx, src, dst, pool: str, name: str, before: int, total: int) -> None:
    """One volume's stream (a thread), its progress reported from the task's thread; a
    cancel stops the stream at its next chunk (the partial copy is deleted)."""
    done, stop, outcome = [0], threading.Event(), {}

    def progress(sent: int, _size: int) -> None:
        done[0] = sent
        if stop.is_set():
            raise _Stop()

    bound = ctx.task.timeout_seconds   # read here: the row is not the thread's to load

    def run() -> None:
        try:
            src.copy_volume_to(dst, pool, name, progress, timeout=bound)
        except BaseException as exc:  # noqa: BLE001 - raised below
            outcome["error"] = exc
    thread = threading.Thread(target=run, name=f"copy-{name}", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.5)
            ctx.report(min((before + done[0]) / total, 0.98),
                       _l("Copying %(volume)s to %(host)s (%(done)s of %(total)s MiB).",
                          volume=name, host=dst.name, done=(before + done[0]) // 2**20,
                          total=total // 2**20))
    except BaseException:
        stop.set()
        thread.join()
        raise
    if "error" in outcome:
        raise outcome["error"]
