from flask import render_template
from flask_login import current_user, login_required

from ..services.monitoring import dashboard as dashboard_service
from . import bp


@bp.route("/dashboard")
@login_required
def index():
    if current_user.is_admin:
        return render_template("dashboard/admin.html", board=dashboard_service.for_admin())
    return render_template("dashboard/user.html", board=dashboard_service.for_user(current_user))
