from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _

from ..helpers import perform, show_error
from ..security import admin_required
from ..services import FieldError
from ..services import bootjobs as bootjob_service
from . import bp
from .forms import BootJobForm

EXAMPLE = "runcmd:\n  - [sh, -c, 'echo hello > /etc/motd']\n"


@bp.route("/")
@admin_required
def index():
    return render_template("bootjobs/index.html", jobs=bootjob_service.all_boot_jobs())


def _save(form, job=None):
    args = (form.name.data, form.script.data, form.description.data or "")
    flags = {"is_default": form.is_default.data, "user_choice": form.user_choice.data}
    if job is None:
        return bootjob_service.create_boot_job(*args, **flags)
    return bootjob_service.update_boot_job(job, *args, **flags)


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def create():
    form = BootJobForm()
    if not form.is_submitted():
        form.script.data = EXAMPLE
    if form.validate_on_submit():
        try:
            job = _save(form)
        except FieldError as exc:
            show_error(form, exc, "script")
        else:
            flash(_("Boot job %(name)s saved.", name=job.name), "success")
            return redirect(url_for("bootjobs.index"))
    return render_template("bootjobs/form.html", form=form, job=None), \
        400 if form.errors else 200


@bp.route("/<int:job_id>/edit", methods=["GET", "POST"])
@admin_required
def edit(job_id: int):
    job = bootjob_service.get_boot_job(job_id)
    form = BootJobForm(obj=job)
    if form.validate_on_submit():
        try:
            _save(form, job)
        except FieldError as exc:
            show_error(form, exc, "script")
        else:
            flash(_("Boot job %(name)s saved. VMs made before keep what they ran.",
                    name=job.name), "success")
            return redirect(url_for("bootjobs.index"))
    return render_template("bootjobs/form.html", form=form, job=job), \
        400 if form.errors else 200


@bp.route("/<int:job_id>/delete", methods=["POST"])
@admin_required
def delete(job_id: int):
    job = bootjob_service.get_boot_job(job_id)
    return perform(lambda: bootjob_service.delete_boot_job(job),
                   done=_("Boot job %(name)s deleted.", name=job.name),
                   back=url_for("bootjobs.index"))
