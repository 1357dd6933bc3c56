from flask import abort, flash, redirect, render_template, url_for

from ..extensions import db
from ..helpers import show_error
from ..models import Image, Server
from ..security import admin_required
from ..services import ServiceError
from ..services import images as image_service
from . import bp
from .forms import ImageEditForm, ImageForm


def get_image_or_404(image_id: int) -> Image:
    """The image with this id (administrator pages). Raises 404."""
    image = db.session.get(Image, image_id)
    if image is None:
        abort(404)
    return image


def _servers():
    return db.session.execute(db.select(Server).order_by(Server.name)).scalars().all()


@bp.route("/")
@admin_required
def index():
    images = db.session.execute(db.select(Image).order_by(Image.name)).scalars().all()
    return render_template("images/index.html", images=images, servers=_servers())


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def create():
    form = ImageForm()
    if form.validate_on_submit():
        try:
            image = image_service.add_image(form.name.data, form.path.data, form.os_type.data)
        except image_service.ImageError as exc:
            db.session.rollback()
            show_error(form, exc, "path")
        else:
            hosts = len(image_service.servers_with_image(image))
            flash(f"Image {image.name} added: {image.format}, found on {hosts} host"
                  f"{'s' if hosts != 1 else ''}.", "success")
            return redirect(url_for("images.detail", image_id=image.id))
    return render_template("images/form.html", form=form, image=None), \
        400 if form.errors else 200


@bp.route("/<int:image_id>")
@admin_required
def detail(image_id: int):
    image = get_image_or_404(image_id)
    return render_template("images/detail.html", image=image, servers=_servers(),
                           form=ImageEditForm(obj=image))


@bp.route("/<int:image_id>/edit", methods=["POST"])
@admin_required
def edit(image_id: int):
    image = get_image_or_404(image_id)
    form = ImageEditForm()
    if form.validate_on_submit():
        try:
            image_service.update_image(image, form.name.data, form.os_type.data)
        except image_service.ImageError as exc:
            db.session.rollback()
            show_error(form, exc, "name")
        else:
            flash(f"Image {image.name} saved.", "success")
            return redirect(url_for("images.detail", image_id=image.id))
    return render_template("images/detail.html", image=image, servers=_servers(),
                           form=form), 400


@bp.route("/<int:image_id>/recheck", methods=["POST"])
@admin_required
def recheck(image_id: int):
    image = get_image_or_404(image_id)
    try:
        unreachable = image_service.recheck_image(image)
    except ServiceError as exc:
        db.session.rollback()
        flash(str(exc), "danger")
    else:
        flash("Presence on the hosts checked again"
              + (f"; not checked on {', '.join(unreachable)}." if unreachable else "."),
              "warning" if unreachable else "success")
    return redirect(url_for("images.detail", image_id=image.id))


@bp.route("/<int:image_id>/delete", methods=["POST"])
@admin_required
def delete(image_id: int):
    image = get_image_or_404(image_id)
    try:
        image_service.delete_image(image)
    except ServiceError as exc:
        flash(str(exc), "danger")
        return redirect(url_for("images.detail", image_id=image.id))
    flash(f"Image {image.name} removed from LouCloud; its file on the hosts is untouched.",
          "success")
    return redirect(url_for("images.index"))
