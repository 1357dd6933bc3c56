from flask import (Response, current_app, flash, jsonify, make_response, redirect,
                   render_template, request, stream_with_context, url_for)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from wtforms import SelectChoice

from ..helpers import page_arg, perform, show_error
from ..security import allow_inline_styles, console_url
from ..services import FieldError, NotFound, ServiceError
from ..services import bootjobs as bootjob_service
from ..services import console as console_service
from ..services import hosts as host_service
from ..services import users as user_service
from ..services import templates as template_service
from ..services.access import CONSOLE, VIEW, for_lifecycle, vm_for
from ..services.monitoring import metrics as metrics_service
from ..services.settings import get_settings
from ..services.vms import create as vm_create
from ..services import tasklist as task_service
from ..services.vms import guest, lifecycle, media, migration, state, stored, views
from ..services.vms import lost as lost_service
from . import back_to, bp, next_arg, on_vm
from .forms import VMCreateForm, VMFilterForm, VMPasswordForm

PER_PAGE = 50


def _filter_form() -> VMFilterForm:
    form = VMFilterForm(request.args)
    form.state.choices = [SelectChoice("", _("Any state"))] + [
        SelectChoice(s, views.state_label(s)) for s in views.FILTER_STATES]
    if current_user.is_admin:
        form.owner.choices = [SelectChoice(0, _("Every owner"))] + [
            SelectChoice(u.id, u.username) for u in user_service.all_users()]
        form.host.choices = [SelectChoice(0, _("Every host"))] + [
            SelectChoice(s.id, s.name) for s in host_service.all_hosts()]
    else:
        form.owner.choices = form.host.choices = [SelectChoice(0, "")]
    return form


@bp.route("/")
@login_required
def index():
    form = _filter_form()
    valid = form.validate()
    page = state.list_vms(
        current_user,
        q=(form.q.data or "") if valid else "",
        owner_id=form.owner.data if valid else None,
        host_id=form.host.data if valid else None,
        state=(form.state.data or "") if valid else "",
        page=page_arg(PER_PAGE), per_page=PER_PAGE)
    return render_template("vms/index.html", page=page, form=form,
                           usage=user_service.quota_usage(current_user),
                           lost=lost_service.lost_vms_for(current_user))


@bp.route("/vms/new", methods=["GET", "POST"])
@login_required
def create():
    form = VMCreateForm()
    templates = template_service.templates_for(current_user)
    form.template_id.choices = [SelectChoice(t.id, _(
        "%(name)s — %(vcpus)s vCPU, %(memory)s MiB, %(disk)s GiB", name=t.name,
        vcpus=t.vcpus, memory=t.memory_mib, disk=t.disk_gib)) for t in templates]
    form.host_id.choices = [SelectChoice(0, _("Automatic"))]
    if current_user.is_admin:
        form.host_id.choices += [SelectChoice(s.id, s.name) for s in host_service.all_hosts()]
    form.boot_jobs.choices = [SelectChoice(j.id, j.name + (f" — {j.description}"
                                                           if j.description else ""))
                              for j in bootjob_service.user_choices()]
    status = 200
    if form.validate_on_submit():
        try:
            vm, password = _create(form)
        except FieldError as exc:
            show_error(form, exc, "name")
            status = exc.status
        except ServiceError as exc:
            show_error(form, exc)
            status = exc.status
        else:
            said = (_("%(name)s created on %(host)s and started.", name=vm.name,
                      host=vm.host.name) if form.start.data else
                    _("%(name)s created on %(host)s.", name=vm.name, host=vm.host.name))
            if vm.nic_note and vm.nic_kind is None and vm.template.nic_kind != "none":
                said += " " + _("Its network card: %(note)s.", note=vm.nic_note)
            flash(said,
                  "warning" if vm.nic_note and vm.template.nic_kind != "none" else "success")
            if password:
                flash(_("Log in to %(name)s as %(user)s with the password %(password)s — "
                        "shown only now: write it down.", name=vm.name,
                        user=vm.image.login_user, password=password), "password")
            return redirect(url_for("vms.detail", vm_id=vm.id))
    if form.errors and status == 200:
        status = 400
    return render_template("vms/form.html", form=form, templates=templates,
                           usage=user_service.quota_usage(current_user)), status


def _create(form):
    """Create the VM the form asks for; a cloud image without a password given gets
    one made here, returned to be shown once."""
    template = template_service.template_for(current_user, form.template_id.data)
    host = host_service.get_host(form.host_id.data) \
        if current_user.is_admin and form.host_id.data else None
    password = form.password.data or None
    generated = None
    if password is None and template.image.cloud_init:
        password = generated = vm_create.generate_password()
    vm = vm_create.create_vm(current_user, form.name.data, template, host,
                             start=form.start.data, password=password,
                             boot_job_ids=form.boot_jobs.data or [],
                             ip_address=(form.ip_address.data or None)
                             if current_user.is_admin else None)
    return vm, generated


@bp.route("/vms/<int:vm_id>")
@login_required
def detail(vm_id: int):
    try:
        vm = vm_for(current_user, vm_id)
    except NotFound:
        # a VM lost with a forgotten host: its old address shows it, marked lost
        lost = lost_service.lost_at_old_address(current_user, vm_id)
        if lost is None:
            raise
        return redirect(url_for("vms.lost", lost_id=lost.id))
    return render_template("vms/detail.html", vm=vm, detail=state.vm_detail(vm),
                           labels=lifecycle.LABELS, password_form=_password_form(vm),
                           refresh_seconds=get_settings().sample_interval_seconds,
                           isos=media.isos_for(vm), tasks=task_service.active_for("vm", vm.id),
                           migration_targets=migration.targets_for(vm)
                           if current_user.is_admin else [])


@bp.route("/vms/<int:vm_id>/media", methods=["POST"])
@login_required
def insert_media(vm_id: int):
    vm = vm_for(current_user, vm_id)
    try:
        image_id = int(request.form.get("image_id", ""))
    except ValueError:
        image_id = 0
    return perform(lambda: media.insert_iso(current_user, vm, image_id),
                   done=lambda message: message, back=url_for("vms.detail", vm_id=vm.id))


@bp.route("/vms/<int:vm_id>/eject", methods=["POST"])
@login_required
def eject_media(vm_id: int):
    return on_vm(vm_id, lambda vm: media.eject_iso(current_user, vm))


def _password_form(vm, formdata=None) -> VMPasswordForm:
    form = VMPasswordForm(formdata=formdata)
    if not form.user.data:
        form.user.data = vm.image.login_user or "root"
    return form


@bp.route("/vms/<int:vm_id>/password", methods=["POST"])
@login_required
def reset_password(vm_id: int):
    """Set a guest user's password through the QEMU guest agent."""
    vm = vm_for(current_user, vm_id)
    form = _password_form(vm, request.form)

    def reset() -> str:
        if not form.validate_on_submit():
            raise FieldError("; ".join(e for errors in form.errors.values() for e in errors))
        return guest.reset_password(vm, form.user.data, form.password.data)

    return perform(reset, done=lambda message: message,
                   back=url_for("vms.detail", vm_id=vm.id))


@bp.route("/vms/<int:vm_id>.json", endpoint="state")
@login_required
def state_json(vm_id: int):
    return jsonify(state.view_of(vm_for(current_user, vm_id, VIEW)).as_dict())


@bp.route("/vms/states.json")
@login_required
def states():
    """Live states of the listed VM ids the user may see (others are left out)."""
    ids = [int(i) for i in request.args.get("ids", "").split(",")[:200]
           if i.isascii() and i.isdigit() and len(i) <= 19]
    return jsonify({str(v.vm.id): {"state": v.state, "actions": v.actions,
                                   "addresses": v.addresses}
                    for v in state.views_of_ids(current_user, ids)})


@bp.route("/vms/events")
@login_required
def events():
    """State changes of the VMs the user may see (of ?ids=, when given), pushed as
    server-sent events from the store: open pages follow without polling."""
    ids = [int(i) for i in request.args.get("ids", "").split(",")[:500]
           if i.isascii() and i.isdigit() and len(i) <= 19]
    stream = stored.stream(current_user._get_current_object(), ids or None,
                           last_id=request.headers.get("Last-Event-ID"),
                           seconds=current_app.config["EVENT_STREAM_SECONDS"])
    return Response(stream_with_context(stream), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@bp.route("/vms/<int:vm_id>/live.json")
@login_required
def live(vm_id: int):
    """What only the host can tell of the VM now (the page asks after it is shown)."""
    return jsonify(state.live_status(vm_for(current_user, vm_id)))


@bp.route("/vms/<int:vm_id>/metrics.json")
@login_required
def metrics(vm_id: int):
    vm = vm_for(current_user, vm_id)
    return jsonify(metrics_service.vm_series(vm, request.args.get("range", "hour")))


ACTION_RULE = "/vms/<int:vm_id>/<any(" + ",".join(lifecycle.ACTIONS) + "):action>"


@bp.route(ACTION_RULE, methods=["POST"])
@login_required
def act(vm_id: int, action: str):
    return on_vm(vm_id, lambda vm: lifecycle.act_on_vm(vm, action),
                 access=for_lifecycle(action))


@bp.route("/vms/<int:vm_id>/console", methods=["POST"])
@login_required
def console(vm_id: int):
    """Issue a one-time console token and open the screen page. The token travels in
    the URL fragment: browsers never send that part, so no host log can hold it."""
    vm = vm_for(current_user, vm_id, CONSOLE)
    return perform(lambda: console_service.issue_token(current_user, vm), done=None,
                   back=lambda token: url_for("vms.screen", vm_id=vm.id, **next_arg(),
                                             _anchor=token),
                   refused_back=back_to(vm))


@bp.route("/vms/<int:vm_id>/screen")
@login_required
def screen(vm_id: int):
    vm = vm_for(current_user, vm_id, CONSOLE)
    return render_template("vms/console.html", vm=vm, console_url=console_url(),
                           back=back_to(vm))


@bp.route("/vms/<int:vm_id>/serial", methods=["POST"])
@login_required
def serial(vm_id: int):
    """Issue a one-time text console token and open the terminal page (the token in
    the URL fragment, as for the screen)."""
    vm = vm_for(current_user, vm_id, CONSOLE)
    return perform(lambda: console_service.issue_token(current_user, vm, "serial"),
                   done=None,
                   back=lambda token: url_for("vms.terminal", vm_id=vm.id, **next_arg(),
                                             _anchor=token),
                   refused_back=back_to(vm))


@bp.route("/vms/<int:vm_id>/terminal")
@login_required
def terminal(vm_id: int):
    vm = vm_for(current_user, vm_id, CONSOLE)
    return allow_inline_styles(make_response(render_template(
        "vms/terminal.html", vm=vm, console_url=console_url() + "/serial",
        back=back_to(vm))))


@bp.route("/vms/<int:vm_id>/delete", methods=["POST"])
@login_required
def delete(vm_id: int):
    vm = vm_for(current_user, vm_id)
    return perform(lambda: lifecycle.delete_vm(vm), done=lambda message: message,
                   back=url_for("vms.index"), refused_back=url_for("vms.detail", vm_id=vm.id))
