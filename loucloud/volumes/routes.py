from flask import render_template, request, url_for
from flask_babel import gettext as _

from ..helpers import perform
from ..security import admin_required
from ..services import NotFound
from ..services import hosts as host_service
from ..services import volumes as volume_service
from . import bp


@bp.route("/")
@admin_required
def index():
    return render_template("volumes/index.html", report=volume_service.list_volumes())


@bp.route("/delete", methods=["POST"])
@admin_required
def delete_orphan():
    def delete() -> str:
        try:
            host = host_service.get_host(int(request.form.get("host_id", "")))
        except ValueError:
            raise NotFound(_("No such host.")) from None
        return volume_service.delete_orphan(host, request.form.get("name", ""))

    return perform(delete, done=lambda message: message, back=url_for("volumes.index"))
