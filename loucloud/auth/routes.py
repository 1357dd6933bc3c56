from flask import flash, make_response, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from ..i18n import COOKIE, normalise
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
        flash(_("Welcome, %(name)s.", name=user.display_name), "success")
        return redirect(next_url if is_safe_next(next_url) else url_for("vms.index"))
    response = make_response(render_template("auth/login.html", form=form))
    chosen = normalise(request.args.get("lang"))
    if chosen:   # the login page's language links: kept for the next visits
        response.set_cookie(COOKIE, chosen, max_age=365 * 86400, samesite="Lax",
                            secure=request.is_secure, httponly=True)
    return response


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    # CSRFProtect has checked the token of this POST, as of every POST.
    auth_service.log_out(current_user, current_user.get_id())
    logout_user()
    session.clear()
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"))



@bp.route("/language", methods=["POST"])
@login_required
def language():
    """Choose the language of one's pages (kept in the profile; the login page has its
    own links, ?lang=, kept in a cookie)."""
    from ..helpers import perform
    from ..services import users as user_service

    back = request.form.get("next", "").rstrip("?")
    return perform(lambda: user_service.set_language(current_user,
                                                     request.form.get("locale") or None),
                   done=lambda message: message,
                   back=back if is_safe_next(back) else url_for("users.profile"))
