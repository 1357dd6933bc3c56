from flask import Blueprint, request, url_for
from flask_login import current_user

from ..helpers import perform
from ..security import is_safe_next
from ..services.access import OWN, may_use_vm, vm_for

bp = Blueprint("vms", __name__)


def back_to(vm, anchor: str | None = None) -> str:
    """Where a VM's button leads back to: the VM's page for its owner and the
    administrator; for a group's manager (who has no VM page of the members' VMs) the
    page he came from (the form's ``next``, a path of this site), else his groups."""
    if may_use_vm(current_user, vm, OWN):
        return url_for("vms.detail", vm_id=vm.id, _anchor=anchor)
    target = request.values.get("next")
    return target if is_safe_next(target) else url_for("groups.index")


def next_arg() -> dict:
    """The request's ``next`` (a path of this site) to hand on to the page it leads to
    (a console opened from a group's page goes back there)."""
    target = request.values.get("next")
    return {"next": target} if is_safe_next(target) else {}


def on_vm(vm_id: int, call, anchor: str | None = None, access: str = OWN):
    """The shape of most buttons of a VM's page: the VM the user may use for ``access``
    (services/access.py; else 404), ``call(vm)`` (one service function) through
    perform(), its message flashed (or answered as JSON), back to the VM's page (at
    ``anchor``; back_to)."""
    vm = vm_for(current_user, vm_id, access)
    return perform(lambda: call(vm), done=lambda message: message,
                   back=back_to(vm, anchor))


from . import routes  # noqa: E402,F401
from . import snapshot_routes  # noqa: E402,F401
from . import migration_routes  # noqa: E402,F401 (issue 14)
from . import disk_routes  # noqa: E402,F401  (issue 14: resize and disks)
from . import lost_routes  # noqa: E402,F401  (issue 14: VMs lost with a forgotten host)
