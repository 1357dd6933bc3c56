"""The VM page's Migrate form (issue 14, the administrator's): one POST over
services/vms/migration.migrate_vm."""
from flask import request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..helpers import perform
from ..services import FieldError, NotFound
from ..services import hosts as host_service
from ..services.access import vm_for
from ..services.vms import migration
from . import bp


def _target():
    raw = request.form.get("target_id", "")
    if not raw:
        return None
    try:
        return host_service.get_host(int(raw))
    except (ValueError, NotFound):
        raise FieldError(_("Choose a host from the list."), "target_id") from None


@bp.route("/vms/<int:vm_id>/migrate", methods=["POST"])
@login_required
def migrate(vm_id: int):
    vm = vm_for(current_user, vm_id)
    offline = request.form.get("offline") == "1"
    return perform(lambda: migration.migrate_vm(current_user, vm, _target(), offline=offline),
                   done=lambda task: _("Moving %(name)s: see task %(task)s.", name=vm.name,
                                       task=task.id),
                   back=url_for("vms.detail", vm_id=vm.id))
