"""The batch pages (issue 16): batch create for a group or a list of users, the
batches with their VMs and what could not be made, their actions and expiry, and "end
of class" on a group's page. The administrator's; a group's managers' for the group.
The same services as `manage.py vms batch-*` and /api/v1/batches."""
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..helpers import perform, show_error
from ..services import FieldError, NotFound
from ..services import templates as template_service
from ..services import users as user_service
from ..services.vms import batch as batch_service
from ..services.vms import batch_access, expiry
from ..services.vms.batch_actions import ACTIONS
from . import bp
from .forms import BatchForm, ExpiryForm


@bp.route("/")
@login_required
def index():
    batches = batch_access.batches_for(current_user)
    return render_template("batches/index.html",
                           rows=[(b, batch_service.summary(b)) for b in batches])


def _choices(form: BatchForm) -> None:
    groups = batch_access.managed_groups(current_user)
    form.group_id.choices = [(g.id, g.name) for g in groups]
    if current_user.is_admin:
        form.group_id.choices.append((0, _("a list of users")))
    form.template_id.choices = [(t.id, t.name) for t in template_service.all_templates()]


@bp.route("/new", methods=["GET", "POST"])
@login_required
def create():
    batch_access.check_may_batch(current_user)
    form = BatchForm()
    _choices(form)
    if not form.is_submitted() and request.args.get("group_id", "").isdigit():
        form.group_id.data = int(request.args["group_id"])
    if form.validate_on_submit():
        try:
            batch = _start(form)
        except FieldError as exc:
            show_error(form, exc, "pattern")
        else:
            flash(_("Batch %(id)s: %(count)s VMs from %(template)s are being made.",
                    id=batch.id, count=len(batch.planned_items),
                    template=batch.template_name), "success")
            return redirect(url_for("batches.detail", batch_id=batch.id))
    return render_template("batches/new.html", form=form), 400 if form.errors else 200


def _start(form: BatchForm):
    template = template_service.get_template(form.template_id.data)
    options = {"pattern": form.pattern.data, "per_user": form.per_user.data,
               "expires_at": form.expires_at.data}
    if form.group_id.data:
        group = batch_access.group_for_batches(current_user, form.group_id.data)
        return batch_access.start_group_batch(current_user, group, template, **options)
    names = (form.usernames.data or "").replace(",", " ").split()
    if not names:
        raise FieldError(_("Name the users, or choose a group."), "usernames")
    users = []
    for name in dict.fromkeys(names):
        try:
            users.append(user_service.user_by_name(name))
        except NotFound:    # said with the field
            raise FieldError(_("There is no user %(name)s.", name=name), "usernames") \
                from None
    return batch_access.start_user_batch(current_user, template, users, **options)


@bp.route("/<int:batch_id>")
@login_required
def detail(batch_id: int):
    batch = batch_access.batch_for(current_user, batch_id)
    return render_template("batches/detail.html", batch=batch,
                           summary=batch_service.summary(batch),
                           failures=batch_service.failures(batch),
                           vms=batch_service.batch_vms(batch), actions=ACTIONS,
                           expiry_form=ExpiryForm(formdata=None,
                                                  expires_at=batch.expires_at))


def _task_started(task) -> str:
    return _("Task %(id)s started: %(what)s.", id=task.id, what=task.target_name)


@bp.route("/<int:batch_id>/<any(start, shutdown, poweroff, delete):action>",
          methods=["POST"])
@login_required
def act(batch_id: int, action: str):
    batch = batch_access.batch_for(current_user, batch_id)
    back = url_for("batches.detail", batch_id=batch.id)
    return perform(lambda: batch_access.act_on_batch(current_user, batch, action),
                   done=_task_started, back=lambda task: url_for("tasks.detail",
                                                                 task_id=task.id),
                   refused_back=back)


@bp.route("/<int:batch_id>/expiry", methods=["POST"])
@login_required
def set_expiry(batch_id: int):
    batch = batch_access.batch_for(current_user, batch_id)
    form = ExpiryForm()
    back = url_for("batches.detail", batch_id=batch.id)
    if not form.validate():
        flash(_("Give the expiry as a date and a time, or leave it empty."), "danger")
        return redirect(back)
    return perform(lambda: expiry.set_expiry(batch, form.expires_at.data),
                   done=lambda message: message, back=back)


@bp.route("/group/<int:group_id>/<any(start, shutdown, poweroff, delete):verb>",
          methods=["POST"])
@login_required
def act_on_group(group_id: int, verb: str):
    """"End of class": the action on every VM made for the group by its batches (one
    audit action, batches.act_on_group, whatever the verb: its URL says which)."""
    group = batch_access.group_for_batches(current_user, group_id)
    return perform(lambda: batch_access.act_on_group(current_user, group, verb),
                   done=_task_started,
                   back=lambda task: url_for("tasks.detail", task_id=task.id),
                   refused_back=url_for("groups.detail", group_id=group.id))

