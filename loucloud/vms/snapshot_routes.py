"""A VM's snapshots, rebuild, clone and saved memory state (issue 14): the page doors,
each one service call through perform(). Suspend to disk itself is a lifecycle action
(routes.act: POST /vms/<id>/save)."""
from flask import flash, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..helpers import perform
from ..services.access import vm_for
from ..services.names import normal
from ..services.vms import clone, rebuild, snapshots
from ..services.vms.create import generate_password
from . import bp, on_vm

MODES = {"auto": None, "memory": True, "disk": False}


def _back(vm) -> str:
    return url_for("vms.detail", vm_id=vm.id)


@bp.route("/vms/<int:vm_id>/snapshots", methods=["POST"])
@login_required
def snapshot_create(vm_id: int):
    memory = MODES.get(request.form.get("mode", "auto"))
    return on_vm(vm_id, lambda vm: snapshots.create_snapshot(vm, request.form.get("name", ""),
                                                             memory))


@bp.route("/vms/<int:vm_id>/snapshots/revert", methods=["POST"])
@login_required
def snapshot_revert(vm_id: int):
    return on_vm(vm_id, lambda vm: snapshots.revert_snapshot(vm, request.form.get("name", "")))


@bp.route("/vms/<int:vm_id>/snapshots/delete", methods=["POST"])
@login_required
def snapshot_delete(vm_id: int):
    return on_vm(vm_id, lambda vm: snapshots.delete_snapshot(vm, request.form.get("name", "")))


@bp.route("/vms/<int:vm_id>/discard-saved", methods=["POST"])
@login_required
def discard_saved(vm_id: int):
    return on_vm(vm_id, snapshots.discard_saved_state)


def _password(seeded: bool) -> tuple[str | None, str | None]:
    """(the password a new seed sets, the one made here to show once)."""
    chosen = request.form.get("password", "") or None
    if chosen is None and seeded:
        made = generate_password()
        return made, made
    return chosen, None


def _show_password(name: str, login_user: str, password: str | None) -> None:
    if password:
        flash(_("Log in to %(name)s as %(user)s with the password %(password)s — shown "
                "only now: write it down.", name=name, user=login_user, password=password),
              "password")


@bp.route("/vms/<int:vm_id>/rebuild", methods=["POST"])
@login_required
def rebuild_vm(vm_id: int):
    vm = vm_for(current_user, vm_id)
    password, made = _password(rebuild.gets_seed(vm))

    def done(message: str) -> str:
        _show_password(vm.name, vm.image.login_user, made)
        return message

    return perform(lambda: rebuild.rebuild_vm(vm, password), done=done, back=_back(vm))


@bp.route("/vms/<int:vm_id>/clone", methods=["POST"])
@login_required
def clone_vm(vm_id: int):
    """Starts the clone's task; the source's page shows its progress."""
    vm = vm_for(current_user, vm_id)
    password, made = _password(clone.gets_seed(vm))
    name = normal(request.form.get("name", ""))  # as the clone will be named

    def done(task) -> str:
        _show_password(name, vm.image.login_user, made)
        return _("Cloning %(source)s as %(name)s: task %(task)s, its progress is shown "
                 "here; %(name)s is ready once its disk is copied.", source=vm.name,
                 name=name, task=task.id)

    return perform(lambda: clone.clone_vm(vm, name, start=bool(request.form.get("start")),
                                          password=password),
                   done=done, back=_back(vm))
