"""The groups' pages (issue 16): the list, a group's page (its members, their VMs and
the group's quota), create, edit, delete. The administrator's; a group's managers see
its page (and the list of the groups they manage)."""
from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..helpers import perform, show_error
from ..security import admin_required
from ..services import FieldError
from ..services import groups as group_service
from ..services.vms.lifecycle import LABELS
from . import bp, operations
from .forms import AddMembersForm, GroupForm


def _limits(form: GroupForm) -> group_service.Limits:
    return group_service.Limits(form.max_vms.data, form.max_vcpus.data,
                                form.max_memory_mib.data, form.max_disk_gib.data)


@bp.route("/")
@login_required
def index():
    """Every group for the administrator; the groups he manages for anybody else."""
    return render_template("groups/index.html",
                           groups=group_service.groups_for(current_user),
                           counts=group_service.member_counts())


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def create():
    form = GroupForm()
    if form.validate_on_submit():
        try:
            group = group_service.create_group(form.name.data, form.description.data,
                                               _limits(form))
        except FieldError as exc:
            show_error(form, exc, "name")
        else:
            flash(_("Group %(name)s created. Add its members now.", name=group.name), "success")
            return redirect(url_for("groups.detail", group_id=group.id))
    return render_template("groups/form.html", form=form, group=None), \
        400 if form.errors else 200


@bp.route("/<int:group_id>")
@login_required
def detail(group_id: int):
    """A group's page: for the administrator and the group's managers (else 404)."""
    group = group_service.group_for(current_user, group_id)
    return render_template("groups/detail.html", page=group_service.group_page(group),
                           add_form=AddMembersForm(formdata=None), operations=operations(),
                           labels=LABELS)


@bp.route("/<int:group_id>/edit", methods=["GET", "POST"])
@admin_required
def edit(group_id: int):
    group = group_service.get_group(group_id)
    form = GroupForm(obj=group)
    if form.validate_on_submit():
        try:
            group_service.update_group(group, form.name.data, form.description.data,
                                       _limits(form))
        except FieldError as exc:
            show_error(form, exc, "name")
        else:
            flash(_("Group %(name)s saved.", name=group.name), "success")
            return redirect(url_for("groups.detail", group_id=group.id))
    return render_template("groups/form.html", form=form, group=group), \
        400 if form.errors else 200


@bp.route("/<int:group_id>/delete", methods=["POST"])
@admin_required
def delete(group_id: int):
    group = group_service.get_group(group_id)
    return perform(lambda: group_service.delete_group(group), done=lambda message: message,
                   back=url_for("groups.index"),
                   refused_back=url_for("groups.detail", group_id=group.id))
