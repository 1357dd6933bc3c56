from flask import flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..helpers import page_arg, perform, show_error
from ..security import admin_required
from ..services import FieldError, ServiceError
from ..services import groups as group_service
from ..services import keys as key_service
from ..services import tokens as token_service
from ..services import users as user_service
from ..services.users import Quota
from . import bp
from .forms import (
    ApiTokenForm,
    ChangePasswordForm,
    PasswordResetForm,
    SshKeyForm,
    UserCreateForm,
    UserEditForm,
    UserFilterForm,
)

PER_PAGE = 50
NEW_TOKEN = "new_api_token"  # the session's key of a token made, to show it once


def _quota(form) -> Quota:
    return Quota(form.max_vms.data, form.max_vcpus.data, form.max_memory_mib.data,
                 form.max_disk_gib.data)


@bp.route("/users/")
@admin_required
def index():
    form = UserFilterForm(request.args)
    filters = {"q": form.q.data or "", "role": form.role.data or "",
               "status": form.status.data or ""} if form.validate() else {}
    page = user_service.search_users(**filters, page=page_arg(PER_PAGE), per_page=PER_PAGE)
    return render_template("users/index.html", page=page, form=form)


@bp.route("/users/new", methods=["GET", "POST"])
@admin_required
def create():
    form = UserCreateForm()
    if request.method == "GET":
        defaults = user_service.default_quota()
        form.max_vms.data, form.max_vcpus.data = defaults.vms, defaults.vcpus
        form.max_memory_mib.data, form.max_disk_gib.data = defaults.memory_mib, defaults.disk_gib
    if form.validate_on_submit():
        try:
            user = user_service.create_user(form.username.data, form.password.data,
                                            form.full_name.data, form.email.data, _quota(form))
        except FieldError as exc:
            show_error(form, exc)
        else:
            flash(_("User %(name)s created.", name=user.username), "success")
            return redirect(url_for("users.detail", user_id=user.id))
    return render_template("users/form.html", form=form, user=None)


@bp.route("/users/<int:user_id>")
@admin_required
def detail(user_id: int):
    user = user_service.get_user(user_id)
    return render_template("users/detail.html", user=user,
                           usage=user_service.quota_usage(user),
                           tokens=token_service.tokens_of(user),
                           memberships=group_service.groups_of(user),
                           reset_form=PasswordResetForm())


@bp.route("/users/<int:user_id>/edit", methods=["GET", "POST"])
@admin_required
def edit(user_id: int):
    user = user_service.get_user(user_id)
    form = UserEditForm(obj=user)
    if form.validate_on_submit():
        try:
            user_service.update_user(user, username=form.username.data,
                                     full_name=form.full_name.data, email=form.email.data,
                                     quota=_quota(form))
        except FieldError as exc:
            show_error(form, exc)
        else:
            flash(_("User %(name)s saved.", name=user.username), "success")
            return redirect(url_for("users.detail", user_id=user.id))
    return render_template("users/form.html", form=form, user=user)


@bp.route("/users/<int:user_id>/password", methods=["POST"])
@admin_required
def reset_password(user_id: int):
    user = user_service.get_user(user_id)
    form = PasswordResetForm()
    if form.validate_on_submit():
        try:
            user_service.reset_password(user, form.password.data)
        except FieldError as exc:
            form.password.errors.append(str(exc))
        else:
            flash(_("New password set for %(name)s; their sessions have ended.",
                    name=user.username), "success")
            return redirect(url_for("users.detail", user_id=user.id))
    return render_template("users/detail.html", user=user,
                           usage=user_service.quota_usage(user),
                           tokens=token_service.tokens_of(user),
                           memberships=group_service.groups_of(user), reset_form=form), 400


@bp.route("/users/<int:user_id>/enable", methods=["POST"])
@admin_required
def enable(user_id: int):
    user = user_service.get_user(user_id)
    return perform(lambda: user_service.set_active(user, True),
                   done=_("User %(name)s enabled.", name=user.username),
                   back=url_for("users.detail", user_id=user.id))


@bp.route("/users/<int:user_id>/disable", methods=["POST"])
@admin_required
def disable(user_id: int):
    user = user_service.get_user(user_id)
    return perform(lambda: user_service.set_active(user, False),
                   done=_("User %(name)s disabled; their sessions have ended.",
                          name=user.username),
                   back=url_for("users.detail", user_id=user.id))


@bp.route("/users/<int:user_id>/delete", methods=["POST"])
@admin_required
def delete(user_id: int):
    user = user_service.get_user(user_id)
    return perform(lambda: user_service.delete_user(user),
                   done=_("User %(name)s deleted.", name=user.username),
                   back=url_for("users.index"),
                   refused_back=url_for("users.detail", user_id=user.id))


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile():
    form = ChangePasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            user_service.change_own_password(current_user, form.current_password.data,
                                             form.password.data, current_user.get_id())
        except FieldError as exc:
            show_error(form, exc)
        else:
            flash(_("Password changed. Your other sessions have ended."), "success")
            return redirect(url_for("users.profile"))
    if form.errors:
        status = 400
    return _profile(form), status


def _profile(form=None, key_form=None, token_form=None):
    """The Profile page; a token just made is shown in it this once (kept in the
    session across the redirect, never in a flashed message: those reach the audit
    log)."""
    return render_template(
        "users/profile.html", form=form or ChangePasswordForm(formdata=None),
        key_form=key_form or SshKeyForm(formdata=None),
        token_form=token_form or ApiTokenForm(formdata=None),
        keys=key_service.keys_of(current_user), tokens=token_service.tokens_of(current_user),
        new_token=session.pop(NEW_TOKEN, None), usage=user_service.quota_usage(current_user))


@bp.route("/profile/keys", methods=["POST"])
@login_required
def add_key():
    form = SshKeyForm()
    if form.validate_on_submit():
        try:
            key = key_service.add_key(current_user, form.name.data, form.key.data)
        except FieldError as exc:
            show_error(form, exc, "key")
        else:
            flash(_("Key %(name)s (%(fingerprint)s) added.", name=key.name,
                    fingerprint=key.fingerprint), "success")
            return redirect(url_for("users.profile", _anchor="ssh-keys"))
    return _profile(key_form=form), 400


@bp.route("/profile/keys/<int:key_id>/delete", methods=["POST"])
@login_required
def delete_key(key_id: int):
    key = key_service.key_of(current_user, key_id)
    return perform(lambda: key_service.delete_key(key),
                   done=_("Key %(name)s deleted.", name=key.name),
                   back=url_for("users.profile", _anchor="ssh-keys"))


@bp.route("/profile/tokens", methods=["POST"])
@login_required
def create_token():
    form = ApiTokenForm()
    status = 400
    if form.validate_on_submit():
        try:
            new = token_service.create_token(current_user, form.name.data,
                                             read_only=form.read_only.data,
                                             expires_days=form.expires_days.data)
        except ServiceError as exc:
            show_error(form, exc)
            status = exc.status
        else:
            token = new.token
            session[NEW_TOKEN] = {"id": token.id, "name": token.name, "secret": new.secret}
            flash(_("Token %(name)s created (read-only): copy it now.", name=token.name)
                  if token.read_only else
                  _("Token %(name)s created: copy it now.", name=token.name), "success")
            return redirect(url_for("users.profile", _anchor="api-tokens"))
    return _profile(token_form=form), status


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke_token(token_id: int):
    """One's own token, from the Profile page; the administrator may revoke anyone's
    (from the user's page), as in the API."""
    token = token_service.token_for(current_user, token_id)
    back = url_for("users.profile", _anchor="api-tokens") \
        if token.user_id == current_user.id \
        else url_for("users.detail", user_id=token.user_id, _anchor="api-tokens")
    return perform(lambda: token_service.revoke_token(current_user, token.id),
                   done=_("Token %(name)s (%(prefix)s…) revoked: it no longer works.",
                          name=token.name, prefix=token.prefix),
                   back=back)
