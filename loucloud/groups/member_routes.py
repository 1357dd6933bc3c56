"""A group's members (issue 16), the administrator's: add existing users, create users
in bulk (their passwords shown once, and downloadable once), remove a member, name or
unname a manager."""
from flask import Response, flash, make_response, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import ngettext

from ..helpers import perform, show_error
from ..security import admin_required
from ..services import FieldError, ServiceError
from ..services import bulk_users
from ..services import groups as group_service
from ..services.vms.lifecycle import LABELS
from . import bp, operations
from .forms import AddMembersForm, BulkUsersForm, DownloadForm


@bp.route("/<int:group_id>/members", methods=["POST"])
@admin_required
def add_members(group_id: int):
    group = group_service.get_group(group_id)
    form = AddMembersForm()
    if form.validate_on_submit():
        try:
            message = group_service.add_members(
                group, group_service.users_named(form.usernames.data),
                manager=form.manager.data)
        except ServiceError as exc:
            show_error(form, exc, "usernames")
        else:
            flash(message, "success")
            return redirect(url_for("groups.detail", group_id=group.id, _anchor="members"))
    return render_template("groups/detail.html", page=group_service.group_page(group),
                           add_form=form, operations=operations(), labels=LABELS), 400


def _bulk_text(form: BulkUsersForm) -> str:
    """The list the form gives: the file's content when one was chosen, else the text.
    Raises FieldError for a file that is too large or not UTF-8 text."""
    upload = form.file.data
    if upload is not None and getattr(upload, "filename", ""):
        content = upload.read(bulk_users.MAX_BYTES + 1)
        if len(content) > bulk_users.MAX_BYTES:
            raise FieldError(_("The file is too large: at most %(max)d KiB.",
                               max=bulk_users.MAX_BYTES // 1024), "file")
        try:
            return content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise FieldError(_("Save the file as UTF-8 text (CSV)."), "file") from None
    return form.users.data or ""


@bp.route("/<int:group_id>/users", methods=["GET", "POST"])
@admin_required
def bulk(group_id: int):
    """Create users in bulk into the group: all of them, or none when a line is wrong.
    Their passwords are shown in the answer to this POST only (never flashed: the audit
    log records flashes), and kept for one download."""
    group = group_service.get_group(group_id)
    form = BulkUsersForm()
    lines = []
    if form.validate_on_submit():
        try:
            created = bulk_users.create_members(group, _bulk_text(form))
        except bulk_users.LinesRefused as exc:
            lines = exc.lines
            flash(exc.head, "danger")
        except FieldError as exc:
            show_error(form, exc, "users")
        else:
            ticket, key = bulk_users.keep_for_download(bulk_users.passwords_csv(created))
            flash(ngettext("%(num)d users created in %(name)s.",
                           "%(num)d users created in %(name)s.", len(created),
                           name=group.name), "success")
            response = make_response(render_template(
                "groups/created.html", group=group, created=created,
                download=DownloadForm(formdata=None, ticket=ticket, key=key),
                minutes=bulk_users.DOWNLOAD_SECONDS // 60))
            response.headers["Cache-Control"] = "no-store"
            return response
    return render_template("groups/bulk.html", group=group, form=form, lines=lines), \
        400 if form.errors or lines else 200


@bp.route("/<int:group_id>/passwords.csv", methods=["POST"])
@admin_required
def download(group_id: int):
    """The passwords of users just created, as CSV, once."""
    group = group_service.get_group(group_id)
    form = DownloadForm()
    back = url_for("groups.detail", group_id=group.id)

    def take() -> str:
        if not form.validate_on_submit():
            raise FieldError(_("This download link is not valid."))
        return bulk_users.take_download(form.ticket.data, form.key.data)

    try:
        content = take()
    except ServiceError as exc:
        flash(str(exc), "danger")
        return redirect(back)
    filename = f"{group.name}-passwords.csv".replace(" ", "_")
    return Response(content, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "no-store"})


@bp.route("/<int:group_id>/members/<int:user_id>/remove", methods=["POST"])
@admin_required
def remove_member(group_id: int, user_id: int):
    group = group_service.get_group(group_id)
    return perform(lambda: group_service.remove_member(group, user_id),
                   done=lambda message: message,
                   back=url_for("groups.detail", group_id=group.id, _anchor="members"))


@bp.route("/<int:group_id>/members/<int:user_id>/manager", methods=["POST"])
@admin_required
def name_manager(group_id: int, user_id: int):
    group = group_service.get_group(group_id)
    return perform(lambda: group_service.set_manager(group, user_id, True),
                   done=lambda message: message,
                   back=url_for("groups.detail", group_id=group.id, _anchor="members"))


@bp.route("/<int:group_id>/members/<int:user_id>/unmanager", methods=["POST"])
@admin_required
def unname_manager(group_id: int, user_id: int):
    group = group_service.get_group(group_id)
    return perform(lambda: group_service.set_manager(group, user_id, False),
                   done=lambda message: message,
                   back=url_for("groups.detail", group_id=group.id, _anchor="members"))
