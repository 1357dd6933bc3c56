from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from wtforms import SelectChoice

from ..helpers import perform, show_error
from ..security import admin_required
from ..services import FieldError
from ..services import bootjobs as bootjob_service
from ..services import groups as group_service
from ..services import images as image_service
from ..services import templates as template_service
from ..services.settings import get_settings
from . import bp
from .forms import TemplateForm


def _form(template=None) -> TemplateForm:
    form = TemplateForm(obj=template)
    if template is not None and not form.is_submitted():
        form.boot_jobs.data = [j.id for j in template.boot_jobs]
        form.visibility.data = "public" if template.public else "groups"
        form.group_ids.data = [g.id for g in template.groups]
    form.image_id.choices = [
        SelectChoice(i.id, _("%(name)s (install from ISO: a blank disk, the ISO inserted)",
                             name=i.name) if i.is_iso else
                     _("%(name)s (%(format)s, min %(size)s GiB)", name=i.name, format=i.format,
                       size=template_service.min_disk_gib(i)))
        for i in image_service.all_images()]
    form.boot_jobs.choices = [SelectChoice(j.id, _("%(name)s (default for all)", name=j.name)
                                           if j.is_default else j.name)
                              for j in bootjob_service.all_boot_jobs()]
    form.group_ids.choices = [SelectChoice(g.id, g.name) for g in group_service.all_groups()]
    return form


def _save(form, template=None):
    sizes = template_service.Sizes(form.vcpus.data, form.memory_mib.data, form.disk_gib.data)
    network = template_service.Network(form.nic_kind.data, form.network.data or "")
    public = form.visibility.data != "groups"
    visibility = template_service.Visibility(
        public, () if public else tuple(form.group_ids.data or ()))
    if template is None:
        return template_service.create_template(form.name.data, sizes, form.image_id.data,
                                                form.notes.data, network=network,
                                                boot_job_ids=form.boot_jobs.data,
                                                visibility=visibility)
    return template_service.update_template(template, form.name.data, sizes,
                                            form.image_id.data, form.notes.data,
                                            network=network, boot_job_ids=form.boot_jobs.data,
                                            visibility=visibility)


@bp.route("/")
@admin_required
def index():
    return render_template("templates/index.html",
                           templates=template_service.all_templates(),
                           counts=template_service.vm_counts(),
                           default_network=get_settings().network)


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def create():
    form = _form()
    if not form.image_id.choices:
        flash(_("Add an image first: a template is made from one."), "warning")
        return redirect(url_for("images.create"))
    if form.validate_on_submit():
        try:
            template = _save(form)
        except FieldError as exc:
            show_error(form, exc, "name")
        else:
            flash(_("Template %(name)s created.", name=template.name), "success")
            return redirect(url_for("templates.index"))
    return render_template("templates/form.html", form=form, template=None), \
        400 if form.errors else 200


@bp.route("/<int:template_id>/edit", methods=["GET", "POST"])
@admin_required
def edit(template_id: int):
    template = template_service.get_template(template_id)
    form = _form(template)
    if form.validate_on_submit():
        try:
            _save(form, template)
        except FieldError as exc:
            show_error(form, exc, "name")
        else:
            flash(_("Template %(name)s saved. Existing VMs keep their sizes.",
                    name=template.name), "success")
            return redirect(url_for("templates.index"))
    return render_template("templates/form.html", form=form, template=template), \
        400 if form.errors else 200


@bp.route("/<int:template_id>/delete", methods=["POST"])
@admin_required
def delete(template_id: int):
    template = template_service.get_template(template_id)
    return perform(lambda: template_service.delete_template(template),
                   done=_("Template %(name)s deleted.", name=template.name),
                   back=url_for("templates.index"))
