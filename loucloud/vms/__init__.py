from flask import Blueprint, url_for
from flask_login import current_user

from ..helpers import perform
from ..services.access import vm_for

bp = Blueprint("vms", __name__)


def on_vm(vm_id: int, call, anchor: str | None = None):
    """The shape of most buttons of a VM's page: the VM the user may act on (else 404),
    ``call(vm)`` (one service function) through perform(), its message flashed (or
    answered as JSON), back to the VM's page (at ``anchor``)."""
    vm = vm_for(current_user, vm_id)
    return perform(lambda: call(vm), done=lambda message: message,
                   back=url_for("vms.detail", vm_id=vm.id, _anchor=anchor))


from . import routes  # noqa: E402,F401
from . import snapshot_routes  # noqa: E402,F401
from . import migration_routes  # noqa: E402,F401 (issue 14)
from . import disk_routes  # noqa: E402,F401  (issue 14: resize and disks)
from . import lost_routes  # noqa: E402,F401  (issue 14: VMs lost with a forgotten host)
