from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from wtforms import SelectChoice

from ..errors import error_response, wants_json
from ..extensions import db
from ..helpers import page_arg, show_error
from ..models import INT64_MAX, VM, Server, Template, User
from ..security import console_url
from ..services import ServiceError
from ..services import console as console_service
from ..services import metrics as metrics_service
from ..services import vms as vm_service
from ..services.settings import get_settings
from ..services.users import quota_usage
from . import bp
from .forms import VMCreateForm, VMFilterForm

PER_PAGE = 50
STATES = ["running", "paused", "shut off", "crashed", "missing", "host offline"]


def get_vm_or_404(vm_id: int) -> VM:
    """The VM with this id if the current user owns it or is the administrator. Raises
    404 otherwise, so that nobody learns which ids exist."""
    vm = db.session.get(VM, vm_id)
    if vm is None or not (current_user.is_admin or vm.owner_id == current_user.id):
        abort(404)
    return vm


def _filter_form() -> VMFilterForm:
    form = VMFilterForm(request.args)
    form.state.choices = [SelectChoice("", "Any state")] + [SelectChoice(s, s) for s in STATES]
    if current_user.is_admin:
        form.owner.choices = [SelectChoice(0, "Every owner")] + [
            SelectChoice(u.id, u.username) for u in
            db.session.execute(db.select(User).order_by(User.username)).scalars()]
        form.server.choices = [SelectChoice(0, "Every host")] + [
            SelectChoice(s.id, s.name) for s in
            db.session.execute(db.select(Server).order_by(Server.name)).scalars()]
    else:
        form.owner.choices = form.server.choices = [SelectChoice(0, "")]
    return form


@bp.route("/")
@login_required
def index():
    form = _filter_form()
    valid = form.validate()
    page = vm_service.list_vms(
        current_user,
        q=(form.q.data or "") if valid else "",
        owner_id=form.owner.data if valid else None,
        server_id=form.server.data if valid else None,
        state=(form.state.data or "") if valid else "",
        page=page_arg(PER_PAGE), per_page=PER_PAGE)
    return render_template("vms/index.html", page=page, form=form,
                           usage=quota_usage(current_user))


@bp.route("/vms/new", methods=["GET", "POST"])
@login_required
def create():
    form = VMCreateForm()
    templates = db.session.execute(db.select(Template).order_by(Template.name)).scalars().all()
    form.template_id.choices = [SelectChoice(t.id, f"{t.name} — {t.vcpus} vCPU, "
                                                   f"{t.memory_mib} MiB, {t.disk_gib} GiB")
                                for t in templates]
    form.server_id.choices = [SelectChoice(0, "Automatic")]
    if current_user.is_admin:
        form.server_id.choices += [
            SelectChoice(s.id, s.name) for s in
            db.session.execute(db.select(Server).order_by(Server.name)).scalars()]
    status = 200
    if form.validate_on_submit():
        template = db.session.get(Template, form.template_id.data)
        server = db.session.get(Server, form.server_id.data) \
            if current_user.is_admin and form.server_id.data else None
        try:
            vm = vm_service.create_vm(current_user, form.name.data, template, server,
                                      start=form.start.data)
        except vm_service.VMError as exc:
            if isinstance(exc, vm_service.QuotaExceeded):
                flash(str(exc), "danger")
            else:
                show_error(form, exc, "name")
            status = exc.status
        except ServiceError as exc:
            flash(str(exc), "danger")
            status = exc.status
        else:
            flash(f"{vm.name} created on {vm.server.name}"
                  f"{' and started' if form.start.data else ''}.", "success")
            return redirect(url_for("vms.detail", vm_id=vm.id))
    if form.errors and status == 200:
        status = 400
    return render_template("vms/form.html", form=form, templates=templates,
                           usage=quota_usage(current_user)), status


@bp.route("/vms/<int:vm_id>")
@login_required
def detail(vm_id: int):
    vm = get_vm_or_404(vm_id)
    return render_template("vms/detail.html", vm=vm, detail=vm_service.vm_detail(vm),
                           labels=vm_service.LABELS,
                           refresh_seconds=get_settings().sample_interval_seconds)


@bp.route("/vms/<int:vm_id>.json")
@login_required
def state(vm_id: int):
    vm = get_vm_or_404(vm_id)
    [view] = vm_service.views([vm])
    return jsonify(view.as_dict())


@bp.route("/vms/states.json")
@login_required
def states():
    """Live states of the listed VM ids the user may see (others are left out)."""
    ids = [int(i) for i in request.args.get("ids", "").split(",")[:200]
           if i.isascii() and i.isdigit() and len(i) <= 19 and int(i) <= INT64_MAX]
    stmt = db.select(VM).where(VM.id.in_(ids))
    if not current_user.is_admin:
        stmt = stmt.where(VM.owner_id == current_user.id)
    views = vm_service.views(db.session.execute(stmt).scalars().all())
    return jsonify({str(v.vm.id): {"state": v.state, "actions": v.actions} for v in views})


@bp.route("/vms/<int:vm_id>/metrics.json")
@login_required
def metrics(vm_id: int):
    vm = get_vm_or_404(vm_id)
    return jsonify(metrics_service.vm_series(vm, request.args.get("range", "hour")))


ACTION_RULE = "/vms/<int:vm_id>/<any(" + ",".join(vm_service.ACTIONS) + "):action>"


@bp.route(ACTION_RULE, methods=["POST"])
@login_required
def act(vm_id: int, action: str):
    vm = get_vm_or_404(vm_id)
    try:
        message = vm_service.act_on_vm(vm, action)
    except ServiceError as exc:
        if wants_json():
            return error_response(exc.status, str(exc))
        flash(str(exc), "danger")
    else:
        if wants_json():
            return jsonify({"message": message})
        flash(message, "success")
    return redirect(url_for("vms.detail", vm_id=vm.id))


@bp.route("/vms/<int:vm_id>/console", methods=["POST"])
@login_required
def console(vm_id: int):
    """Issue a one-time console token and open the screen page. The token travels in
    the URL fragment: browsers never send that part, so no server log can hold it."""
    vm = get_vm_or_404(vm_id)
    try:
        token = console_service.issue_token(current_user, vm)
    except ServiceError as exc:
        flash(str(exc), "danger")
        return redirect(url_for("vms.detail", vm_id=vm.id))
    return redirect(url_for("vms.screen", vm_id=vm.id, _anchor=token))


@bp.route("/vms/<int:vm_id>/screen")
@login_required
def screen(vm_id: int):
    vm = get_vm_or_404(vm_id)
    return render_template("vms/console.html", vm=vm, console_url=console_url())


@bp.route("/vms/<int:vm_id>/delete", methods=["POST"])
@login_required
def delete(vm_id: int):
    vm = get_vm_or_404(vm_id)
    try:
        message = vm_service.delete_vm(vm)
    except ServiceError as exc:
        if wants_json():
            return error_response(exc.status, str(exc))
        flash(str(exc), "danger")
        return redirect(url_for("vms.detail", vm_id=vm.id))
    if wants_json():
        return jsonify({"message": message})
    flash(message, "success")
    return redirect(url_for("vms.index"))
