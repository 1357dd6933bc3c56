"""Batch actions: start, shut down, force off or delete many VMs in one action (a
batch's VMs, or the VMs made for a group: "end of class"), as one task with progress;
each VM's own action (lifecycle.py) does the work, and what could not be done is
listed with its reason while the others go on."""
from __future__ import annotations

import logging

from ...extensions import db
from ...models import VM, Task, User
from .. import Conflict, FieldError, ServiceError, tasks, transaction
from .lifecycle import act_on_vm, delete_vm

log = logging.getLogger(__name__)

ACTIONS = {"start": "Start", "shutdown": "Shut down", "poweroff": "Force off",
           "delete": "Delete"}
# Already there: nothing to do (the stored live state, as the pages show it).
ALREADY = {"start": ("running", "paused"), "shutdown": ("shut off",),
           "poweroff": ("shut off",)}


@transaction
def start_batch_action(actor: User, vms: list[VM], action: str, what: str) -> Task:
    """Queue ``action`` on ``vms`` (whom ``actor`` may act on: the caller's check) as a
    task; ``what`` names them in the task list ("the VMs of batch 3")."""
    if action not in ACTIONS:
        raise FieldError(f"Choose one of: {', '.join(ACTIONS)}.", "action")
    if not vms:
        raise Conflict(f"There are no VMs to {ACTIONS[action].lower()} in {what}.")
    return tasks.start("vm.batch-action", actor, target_type="vms",
                       target_name=f"{ACTIONS[action]}: {what} ({len(vms)} VMs)",
                       args={"action": action, "vm_ids": [vm.id for vm in vms]})


@tasks.kind("vm.batch-action", "Act on many VMs", attempts=1, timeout=3 * 3600,
            admin_only=False)
def _batch_action(ctx: tasks.TaskContext) -> str:
    action, ids = ctx.args["action"], ctx.args["vm_ids"]
    done, skipped, failed = [], [], []
    for i, vm_id in enumerate(ids, 1):
        vm = db.session.get(VM, vm_id)
        if vm is None:
            skipped.append(f"VM {vm_id}: deleted meanwhile")
            continue
        ctx.report(i / len(ids), f"{ACTIONS[action]} {vm.name} ({i} of {len(ids)}).")
        if vm.live_state in ALREADY.get(action, ()):
            skipped.append(f"{vm.name}: already {vm.live_state}")
            continue
        name = vm.name
        try:
            if action == "delete":
                delete_vm(vm)
            else:
                act_on_vm(vm, action)
            done.append(name)
        except Conflict as exc:     # not in a state for it: nothing to do
            skipped.append(f"{name}: {exc}")
        except ServiceError as exc:
            failed.append(f"{name}: {exc}")
            log.warning("batch %s of %s failed: %s", action, name, exc)
    verb = {"start": "started", "shutdown": "asked to shut down", "poweroff": "forced off",
            "delete": "deleted"}[action]
    parts = [f"{len(done)} of {len(ids)} VMs {verb}."]
    if skipped:
        parts.append(f"{len(skipped)} skipped: " + "; ".join(skipped))
    if failed:
        parts.append(f"{len(failed)} failed: " + "; ".join(failed))
    return " ".join(parts)
