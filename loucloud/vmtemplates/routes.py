from flask import abort, flash, redirect, render_template, url_for
from wtforms import SelectChoice

from ..extensions import db
from ..helpers import show_error
from ..models import VM, Image, Template
from ..security import admin_required
from ..services import ServiceError
from ..services import vmtemplates as template_service
from . import bp
from .forms import TemplateForm


def get_template_or_404(template_id: int) -> Template:
    """The template with this id (administrator pages). Raises 404."""
    template = db.session.get(Template, template_id)
    if template is None:
        abort(404)
    return template


def _form(**kw) -> TemplateForm:
    form = TemplateForm(**kw)
    images = db.session.execute(db.select(Image).order_by(Image.name)).scalars().all()
    form.image_id.choices = [SelectChoice(i.id, f"{i.name} ({i.format}, min "
                                                f"{template_service.min_disk_gib(i)} GiB)")
                             for i in images]
    return form


def _save(form, template=None):
    image = db.session.get(Image, form.image_id.data)
    sizes = template_service.Sizes(form.vcpus.data, form.memory_mib.data, form.disk_gib.data)
    if template is None:
        return template_service.create_template(form.name.data, sizes, image, form.notes.data)
    return template_service.update_template(template, form.name.data, sizes, image,
                                            form.notes.data)


@bp.route("/")
@admin_required
def index():
    templates = db.session.execute(db.select(Template).order_by(Template.name)).scalars().all()
    counts = dict(db.session.execute(db.select(VM.template_id, db.func.count(VM.id))
                                     .group_by(VM.template_id)).all())
    return render_template("vmtemplates/index.html", templates=templates, counts=counts)


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def create():
    form = _form()
    if not form.image_id.choices:
        flash("Add an image first: a template is made from one.", "warning")
        return redirect(url_for("images.create"))
    if form.validate_on_submit():
        try:
            template = _save(form)
        except template_service.TemplateError as exc:
            db.session.rollback()
            show_error(form, exc, "name")
        else:
            flash(f"Template {template.name} created.", "success")
            return redirect(url_for("vmtemplates.index"))
    return render_template("vmtemplates/form.html", form=form, template=None), \
        400 if form.errors else 200


@bp.route("/<int:template_id>/edit", methods=["GET", "POST"])
@admin_required
def edit(template_id: int):
    template = get_template_or_404(template_id)
    form = _form(obj=template)
    if form.validate_on_submit():
        try:
            _save(form, template)
        except template_service.TemplateError as exc:
            db.session.rollback()
            show_error(form, exc, "name")
        else:
            flash(f"Template {template.name} saved. Existing VMs keep their sizes.", "success")
            return redirect(url_for("vmtemplates.index"))
    return render_template("vmtemplates/form.html", form=form, template=template), \
        400 if form.errors else 200


@bp.route("/<int:template_id>/delete", methods=["POST"])
@admin_required
def delete(template_id: int):
    template = get_template_or_404(template_id)
    try:
        template_service.delete_template(template)
    except ServiceError as exc:
        flash(str(exc), "danger")
    else:
        flash(f"Template {template.name} deleted.", "success")
    return redirect(url_for("vmtemplates.index"))
