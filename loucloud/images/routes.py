from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _, ngettext
from flask_login import current_user

from ..helpers import perform, show_error
from ..security import admin_required
from ..services import FieldError
from ..services import images as image_service
from ..errors import wants_json
from ..services import hosts as host_service
from ..services import copytasks, imagecopy
from ..services import tasklist as task_service
from . import bp
from .forms import ImageEditForm, ImageForm


def _guest(form) -> image_service.Guest:
    return image_service.Guest(form.os_type.data, form.cloud_init.data,
                               form.login_user.data or "", form.firmware.data)


@bp.route("/")
@admin_required
def index():
    return render_template("images/index.html", images=image_service.all_images(),
                           hosts=host_service.all_hosts())


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def create():
    form = ImageForm()
    if form.validate_on_submit():
        try:
            image = image_service.add_image(form.name.data, form.path.data,
                                            guest=_guest(form))
        except FieldError as exc:
            show_error(form, exc, "path")
        else:
            hosts = len(image_service.hosts_with_image(image))
            flash(ngettext("Image %(name)s added: %(format)s, found on %(num)d host.",
                           "Image %(name)s added: %(format)s, found on %(num)d hosts.", hosts,
                           name=image.name, format=image.format), "success")
            return redirect(url_for("images.detail", image_id=image.id))
    return render_template("images/form.html", form=form, image=None), \
        400 if form.errors else 200


@bp.route("/<int:image_id>")
@admin_required
def detail(image_id: int):
    image = image_service.get_image(image_id)
    active = task_service.active_for("image", image.id)
    if wants_json() or request.args.get("format") == "json":
        return jsonify({"id": image.id, "name": image.name, "format": image.format,
                        "sha256": image.sha256, "copies": imagecopy.copies_progress(image),
                        "tasks": [task_service.as_dict(t) for t in active]})
    return render_template("images/detail.html", image=image,
                           hosts=host_service.all_hosts(), form=ImageEditForm(obj=image),
                           copies=imagecopy.copies_progress(image), tasks=active)


@bp.route("/<int:image_id>/copy", methods=["POST"])
@admin_required
def copy(image_id: int):
    image = image_service.get_image(image_id)
    return perform(lambda: copytasks.copy_where_missing(current_user, image),
                   done=lambda t: _("Copying %(name)s to the hosts that lack it (task %(id)s).",
                                    name=image.name, id=t.id),
                   back=url_for("images.detail", image_id=image.id))


@bp.route("/<int:image_id>/edit", methods=["POST"])
@admin_required
def edit(image_id: int):
    image = image_service.get_image(image_id)
    form = ImageEditForm()
    if form.validate_on_submit():
        try:
            image_service.update_image(image, form.name.data, guest=_guest(form))
        except FieldError as exc:
            show_error(form, exc, "name")
        else:
            flash(_("Image %(name)s saved.", name=image.name), "success")
            return redirect(url_for("images.detail", image_id=image.id))
    return render_template("images/detail.html", image=image,
                           hosts=host_service.all_hosts(), form=form,
                           copies=imagecopy.copies_progress(image),
                           tasks=task_service.active_for("image", image.id)), 400


@bp.route("/<int:image_id>/recheck", methods=["POST"])
@admin_required
def recheck(image_id: int):
    image = image_service.get_image(image_id)

    def done(unreachable: list[str]) -> str:
        if unreachable:
            return _("Presence on the hosts checked again; not checked on %(hosts)s.",
                     hosts=", ".join(unreachable))
        return _("Presence on the hosts checked again.")

    return perform(lambda: image_service.recheck_image(image), done=done,
                   back=url_for("images.detail", image_id=image.id))


@bp.route("/<int:image_id>/delete", methods=["POST"])
@admin_required
def delete(image_id: int):
    image = image_service.get_image(image_id)
    copies = request.form.get("delete_copies") == "1"

    def done(left: list[str]) -> str:
        if not copies or not image.uploaded:
            return _("Image %(name)s removed from LouCloud; its file on the hosts is "
                     "untouched.", name=image.name)
        if left:
            return _("Image %(name)s removed with the copies LouCloud uploaded; not deleted "
                     "on %(hosts)s (offline).", name=image.name, hosts=", ".join(left))
        return _("Image %(name)s removed with the copies LouCloud uploaded.", name=image.name)

    return perform(lambda: image_service.delete_image(image, delete_copies=copies),
                   done=done, back=url_for("images.index"),
                   refused_back=url_for("images.detail", image_id=image.id))
