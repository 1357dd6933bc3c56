from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from ..security import is_safe_next
from ..services import auth as auth_service
from . import bp
from .forms import LoginForm


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("vms.index"))
    form = LoginForm()
    next_url = request.args.get("next")
    if form.validate_on_submit():
        try:
            user = auth_service.authenticate(form.username.data, form.password.data,
                                             request.remote_addr)
        except (auth_service.LoginRefused, auth_service.LoginThrottled) as exc:
            flash(str(exc), "danger")
            return render_template("auth/login.html", form=form), exc.status
        session.clear()  # no state from before the login survives it
        auth_service.start_session(user, request.remote_addr, request.user_agent.string)
        login_user(user)
        flash(f"Welcome, {user.display_name}.", "success")
        return redirect(next_url if is_safe_next(next_url) else url_for("vms.index"))
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    # CSRFProtect has checked the token of this POST, as of every POST.
    auth_service.log_out(current_user, current_user.get_id())
    logout_user()
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
