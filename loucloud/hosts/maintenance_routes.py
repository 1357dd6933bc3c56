"""Host maintenance doors (issue 14): migration address, Drain, Undrain, Forget —
each one POST over services/maintenance.py."""
from flask import request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..helpers import perform
from ..security import admin_required
from ..services import hosts as host_service
from ..services import maintenance
from . import bp


@bp.route("/<int:host_id>/migration-address", methods=["POST"])
@admin_required
def migration_address(host_id: int):
    host = host_service.get_host(host_id)
    return perform(lambda: maintenance.set_migration_address(
        current_user, host, request.form.get("migration_address", "")),
        done=lambda h: _("%(name)s's migration address: %(address)s.", name=h.name,
                         address=h.migration_address) if h.migration_address else
        _("%(name)s's migration address: the host part of its URI.", name=h.name),
        back=url_for("hosts.detail", host_id=host.id))


@bp.route("/<int:host_id>/drain", methods=["POST"])
@admin_required
def drain(host_id: int):
    host = host_service.get_host(host_id)
    return perform(lambda: maintenance.drain(current_user, host),
                   done=lambda task: _("Draining %(name)s: its VMs are moved away (task "
                                       "%(id)s).", name=host.name, id=task.id),
                   back=url_for("hosts.detail", host_id=host.id))


@bp.route("/<int:host_id>/undrain", methods=["POST"])
@admin_required
def undrain(host_id: int):
    host = host_service.get_host(host_id)
    return perform(lambda: maintenance.undrain(current_user, host),
                   done=_("%(name)s accepts VMs again.", name=host.name),
                   back=url_for("hosts.detail", host_id=host.id))


@bp.route("/<int:host_id>/forget", methods=["POST"])
@admin_required
def forget(host_id: int):
    host = host_service.get_host(host_id)
    return perform(lambda: maintenance.forget_host(current_user, host),
                   done=lambda message: message, back=url_for("hosts.index"),
                   refused_back=url_for("hosts.detail", host_id=host.id))
