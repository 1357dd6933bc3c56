"""manage.py vms snapshot|snapshots|revert|snapshot-delete|discard-saved|rebuild|clone
(issue 14; suspend to disk is `vms save`, a lifecycle action of cli/vms.py)."""
import os

import click
from flask_babel import gettext as _

from ..services.vms import clone as clone_service
from ..services.vms import rebuild as rebuild_service
from ..services.vms import snapshots, state
from ..services.vms.create import generate_password
from .common import audited, echo_rows, fail, service
from .tasks import follow
from .vms import OWNER, group


@group.command("snapshot")
@click.argument("name")
@click.argument("snap")
@OWNER
@click.option("--memory", "mode", flag_value="memory",
              help="With the running machine (a running or paused VM).")
@click.option("--disk-only", "mode", flag_value="disk", help="Its disks (a shut-off VM).")
@audited("vms.snapshot")
def snapshot(name: str, snap: str, owner: str, mode: str | None) -> None:
    """Take the snapshot SNAP of the VM NAME of --owner (default: with its memory when
    it runs, of its disks when it is shut off)."""
    vm = service(lambda: state.find_vm(owner, name))
    memory = {"memory": True, "disk": False}.get(mode or "")
    click.echo(service(lambda: snapshots.create_snapshot(vm, snap, memory)))


@group.command("snapshots")
@click.argument("name")
@OWNER
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def snapshots_(name: str, owner: str, as_json: bool) -> None:
    """List the snapshots of the VM NAME of --owner (as its host has them)."""
    vm = service(lambda: state.find_vm(owner, name))
    rows = [{"name": s.name, "created": s.created_at.strftime("%Y-%m-%d %H:%M:%S"),
             "kind": "memory" if s.memory else "disk-only",
             "size_bytes": s.size_bytes if s.size_bytes is not None else ""}
            for s in service(lambda: snapshots.list_snapshots(vm))]
    echo_rows(rows, as_json, ["name", "created", "kind", "size_bytes"])


@group.command("revert")
@click.argument("name")
@click.argument("snap")
@OWNER
@audited("vms.revert")
def revert(name: str, snap: str, owner: str) -> None:
    """Put the VM NAME of --owner back to its snapshot SNAP (what changed since is
    lost)."""
    vm = service(lambda: state.find_vm(owner, name))
    click.echo(service(lambda: snapshots.revert_snapshot(vm, snap)))


@group.command("snapshot-delete")
@click.argument("name")
@click.argument("snap")
@OWNER
@audited("vms.snapshot_delete")
def snapshot_delete(name: str, snap: str, owner: str) -> None:
    """Delete the snapshot SNAP of the VM NAME of --owner."""
    vm = service(lambda: state.find_vm(owner, name))
    click.echo(service(lambda: snapshots.delete_snapshot(vm, snap)))


@group.command("discard-saved")
@click.argument("name")
@OWNER
@audited("vms.discard_saved")
def discard_saved(name: str, owner: str) -> None:
    """Discard the saved memory state of the VM NAME of --owner (it boots afresh)."""
    vm = service(lambda: state.find_vm(owner, name))
    click.echo(service(lambda: snapshots.discard_saved_state(vm)))


def _password(password_env: str | None, seeded: bool) -> tuple[str | None, str | None]:
    password = os.environ.get(password_env, "") if password_env else ""
    if password_env and not password:
        fail(_("%(variable)s is empty or not set", variable=password_env))
    if not password and seeded:
        password = generate_password()
        return password, password
    return password or None, None


PASSWORD_ENV = click.option(
    "--password-env", default=None, metavar="VAR",
    help="Environment variable holding the login password its new first-boot data sets "
         "(cloud images; default: one is made and printed once).")


@group.command("rebuild")
@click.argument("name")
@OWNER
@PASSWORD_ENV
@audited("vms.rebuild")
def rebuild(name: str, owner: str, password_env: str | None) -> None:
    """Put the VM NAME of --owner back on its template's image: a new system disk (what
    it held and its snapshots are lost); name, address and data disks stay."""
    vm = service(lambda: state.find_vm(owner, name))
    password, made = _password(password_env, rebuild_service.gets_seed(vm))
    click.echo(service(lambda: rebuild_service.rebuild_vm(vm, password)))
    if made:
        click.echo(_("login: %(user)s / %(password)s  (shown only now)",
                     user=vm.image.login_user, password=made))


@group.command("clone")
@click.argument("name")
@click.argument("new_name")
@OWNER
@click.option("--no-start", is_flag=True, help="Leave the clone shut off.")
@click.option("--no-wait", is_flag=True, help="Return once its task is queued.")
@PASSWORD_ENV
@audited("vms.clone")
def clone(name: str, new_name: str, owner: str, no_start: bool, no_wait: bool,
          password_env: str | None) -> None:
    """Clone the shut-off VM NAME of --owner as NEW_NAME (same owner and host, its own
    address; its system disk as it is now), as a task followed until it ends."""
    vm = service(lambda: state.find_vm(owner, name))
    password, made = _password(password_env, clone_service.gets_seed(vm))
    login_user = vm.image.login_user
    task = service(lambda: clone_service.clone_vm(vm, new_name, start=not no_start,
                                                  password=password))
    click.echo(_("task %(id)s: cloning %(name)s as %(new_name)s", id=task.id, name=name,
                 new_name=new_name))
    if made:
        click.echo(_("login: %(user)s / %(password)s  (shown only now)", user=login_user,
                     password=made))
    if not no_wait:
        follow(task.id)
