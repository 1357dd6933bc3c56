"""Batch actions: start, shut down, force off or delete many VMs in one action (a
batch's VMs, or the VMs made for a group: "end of class"), as one task with progress;
each VM's own action (lifecycle.py) does the work, and what could not be done is
listed with its reason while the others go on."""
from __future__ import annotations

import logging

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ...extensions import db
from ...models import VM, Task, User
from .. import Conflict, FieldError, ServiceError, said, tasks, transaction
from .lifecycle import act_on_vm, delete_vm
from .views import state_said

log = logging.getLogger(__name__)

ACTIONS = {"start": _l("Start"), "shutdown": _l("Shut down"), "poweroff": _l("Force off"),
           "delete": _l("Delete")}   # lazy: said in the reader's language
# Already there: nothing to do (the stored live state, as the pages show it).
ALREADY = {"start": ("running", "paused"), "shutdown": ("shut off",),
           "poweroff": ("shut off",)}


@transaction
def start_batch_action(actor: User, vms: list[VM], action: str, what: str) -> Task:
    """Queue ``action`` on ``vms`` (whom ``actor`` may act on: the caller's check) as a
    task; ``what`` names them in the task list ("the VMs of batch 3")."""
    if action not in ACTIONS:
        raise FieldError(_("Choose one of: %(actions)s.", actions=", ".join(ACTIONS)),
                         "action")
    if not vms:
        raise Conflict(_("There are no VMs to %(action)s in %(what)s.",
                         action=str(ACTIONS[action]).lower(), what=what))
    return tasks.start("vm.batch-action", actor, target_type="vms",
                       target_name=_("%(action)s: %(what)s (%(count)s VMs)",
                                     action=ACTIONS[action], what=what, count=len(vms)),
                       args={"action": action, "vm_ids": [vm.id for vm in vms]})


@tasks.kind("vm.batch-action", _l("Act on many VMs"), attempts=1, timeout=3 * 3600,
            admin_only=False)
def _batch_action(ctx: tasks.TaskContext) -> said.Joined:
    action, ids = ctx.args["action"], ctx.args["vm_ids"]
    # lazy messages: stored with their values, said in each reader's language (said.py)
    done, skipped, failed = [], [], []
    for i, vm_id in enumerate(ids, 1):
        vm = db.session.get(VM, vm_id)
        if vm is None:
            skipped.append(_l("VM %(id)s: deleted meanwhile", id=vm_id))
            continue
        ctx.report(i / len(ids), _l("%(action)s %(name)s (%(done)s of %(total)s).",
                                    action=ACTIONS[action], name=vm.name, done=i,
                                    total=len(ids)))
        if vm.live_state in ALREADY.get(action, ()):
            skipped.append(_l("%(name)s: already %(state)s", name=vm.name,
                              state=state_said(vm.live_state)))
            continue
        name = vm.name
        try:
            if action == "delete":
                delete_vm(vm)
            else:
                act_on_vm(vm, action)
            done.append(name)
        except Conflict as exc:     # not in a state for it: nothing to do
            skipped.append(said.Joined([name, said.of(exc)], ": "))
        except ServiceError as exc:
            failed.append(said.Joined([name, said.of(exc)], ": "))
            log.warning("batch %s of %s failed: %s", action, name, exc)
    counts = {"done": len(done), "total": len(ids)}
    parts = [{"start": _l("%(done)s of %(total)s VMs started.", **counts),
              "shutdown": _l("%(done)s of %(total)s VMs asked to shut down.", **counts),
              "poweroff": _l("%(done)s of %(total)s VMs forced off.", **counts),
              "delete": _l("%(done)s of %(total)s VMs deleted.", **counts)}[action]]
    if skipped:
        parts.append(_l("%(count)s skipped: %(items)s", count=len(skipped),
                        items=said.Joined(skipped, "; ")))
    if failed:
        parts.append(_l("%(count)s failed: %(items)s", count=len(failed),
                        items=said.Joined(failed, "; ")))
    return said.Joined(parts, " ")
