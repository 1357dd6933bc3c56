from flask import flash, redirect, render_template, url_for

from ..helpers import perform, show_error
from ..security import admin_required
from ..services import FieldError
from ..services import images as image_service
from ..services import hosts as host_service
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
            flash(f"Image {image.name} added: {image.format}, found on {hosts} host"
                  f"{'s' if hosts != 1 else ''}.", "success")
            return redirect(url_for("images.detail", image_id=image.id))
    return render_template("images/form.html", form=form, image=None), \
        400 if form.errors else 200


@bp.route("/<int:image_id>")
@admin_required
def detail(image_id: int):
    image = image_service.get_image(image_id)
    return render_template("images/detail.html", image=image,
                           hosts=host_service.all_hosts(), form=ImageEditForm(obj=image))


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
            flash(f"Image {image.name} saved.", "success")
            return redirect(url_for("images.detail", image_id=image.id))
    return render_template("images/detail.html", image=image,
                           hosts=host_service.all_hosts(), form=form), 400


@bp.route("/<int:image_id>/recheck", methods=["POST"])
@admin_required
def recheck(image_id: int):
    image = image_service.get_image(image_id)

    def done(unreachable: list[str]) -> str:
        return "Presence on the hosts checked again" + (
            f"; not checked on {', '.join(unreachable)}." if unreachable else ".")

    return perform(lambda: image_service.recheck_image(image), done=done,
                   back=url_for("images.detail", image_id=image.id))


@bp.route("/<int:image_id>/delete", methods=["POST"])
@admin_required
def delete(image_id: int):
    image = image_service.get_image(image_id)
    return perform(lambda: image_service.delete_image(image),
                   done=f"Image {image.name} removed from LouCloud; its file on the hosts "
                        "is untouched.",
                   back=url_for("images.index"),
                   refused_back=url_for("images.detail", image_id=image.id))
