"""VMs lost with a forgotten host (issue 14): the owner's page of one, and the one thing
that can be done with it, deleting its record (services/vms/lost.py)."""
from flask import render_template, url_for
from flask_login import current_user, login_required

from ..helpers import perform
from ..services.vms import lost as lost_service
from . import bp


@bp.route("/vms/lost/<int:lost_id>")
@login_required
def lost(lost_id: int):
    return render_template("vms/lost.html",
                           lost=lost_service.lost_for(current_user, lost_id))


@bp.route("/vms/lost/<int:lost_id>/delete", methods=["POST"])
@login_required
def delete_lost(lost_id: int):
    record = lost_service.lost_for(current_user, lost_id)
    return perform(lambda: lost_service.delete_lost(current_user, record),
                   done=lambda message: message, back=url_for("vms.index"),
                   refused_back=url_for("vms.lost", lost_id=lost_id))
