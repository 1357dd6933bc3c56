"""manage.py vms create|list|<action>|delete|reset-password|insert-iso|eject|lost|
delete-lost"""
import os

import click
from flask.cli import AppGroup
from flask_babel import gettext as _

from ..services import bootjobs as bootjob_service
from ..services import hosts as host_service
from ..services import images as image_service
from ..services import users as user_service
from ..services import templates as template_service
from ..services.names import normal
from ..services.vms import create as vm_create
from ..services.vms import guest, lifecycle, media, state
from ..services.vms import lost as lost_service
from .common import audited, echo_rows, fail, service
from .tasks import acting_admin

group = AppGroup("vms", help="Virtual machines.")
OWNER = click.option("--owner", required=True, help="User name of the owner.")


@group.command("create")
@click.argument("name")
@OWNER
@click.option("--template", "template_name", required=True)
@click.option("--host", "host_name", default=None, help="Host (default: placement).")
@click.option("--no-start", is_flag=True, help="Leave it shut off.")
@click.option("--password-env", default=None, metavar="VAR",
              help="Environment variable holding the login password (cloud images; "
                   "default: one is made and printed once).")
@click.option("--boot-job", "boot_jobs", multiple=True, help="An extra boot job offered to "
                                                              "users (repeat).")
@click.option("--ip", "ip_address", default=None, help="A fixed address of its network's "
                                                        "range.")
@audited("vms.create")
def create(name, owner, template_name, host_name, no_start, password_env, boot_jobs,
           ip_address) -> None:
    """Create the VM NAME for --owner from --template."""
    template = service(lambda: template_service.template_by_name(normal(template_name)))
    password = os.environ.get(password_env, "") if password_env else ""
    if password_env and not password:
        fail(_("%(variable)s is empty or not set", variable=password_env))
    generated = None
    if not password and template.image.cloud_init:
        password = generated = vm_create.generate_password()
    vm = service(lambda: vm_create.create_vm(
        user_service.user_by_name(owner), name, template,
        host_service.host_by_name(host_name) if host_name else None, start=not no_start,
        password=password or None, ip_address=ip_address,
        boot_job_ids=[bootjob_service.boot_job_by_name(j).id for j in boot_jobs]))
    click.echo(_("created %(name)s on %(host)s, address %(address)s", name=vm.name,
                 host=vm.host.name, address=vm.ip_address) if vm.ip_address
               else _("created %(name)s on %(host)s", name=vm.name, host=vm.host.name))
    if vm.nic_note and template.nic_kind != "none":
        click.echo(_("warning: no network card: %(note)s", note=vm.nic_note), err=True)
    if generated:
        click.echo(_("login: %(user)s / %(password)s  (shown only now)",
                     user=vm.image.login_user, password=generated))


@group.command("list")
@click.option("--owner", default=None, help="Only this user's VMs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(owner: str | None, as_json: bool) -> None:
    """List VMs with libvirt's live state."""
    viewer = service(lambda: user_service.user_by_name(owner)) if owner \
        else user_service.the_admin()
    if viewer is None:
        fail(_("no administrator yet: run init"))
    page = state.list_vms(viewer, per_page=1_000_000)
    rows = [v.as_dict() for v in page.items]
    for row in rows:
        row["address"] = row["addresses"][0] if row["addresses"] else ""
    echo_rows(rows, as_json, ["id", "name", "owner", "host", "state", "address", "vcpus",
                              "memory_mib"])


def _action(action: str):
    @click.argument("name")
    @OWNER
    @audited(f"vms.{action}")
    def command(name: str, owner: str) -> None:
        click.echo(service(lambda: lifecycle.act_on_vm(state.find_vm(owner, name), action)))
    command.__doc__ = f"{lifecycle.LABELS[action]} the VM NAME of --owner."
    return command


for _name in lifecycle.ACTIONS:
    group.command(_name)(_action(_name))


@group.command("delete")
@click.argument("name")
@OWNER
@audited("vms.delete")
def delete(name: str, owner: str) -> None:
    """Delete the VM NAME of --owner with its disks."""
    click.echo(service(lambda: lifecycle.delete_vm(state.find_vm(owner, name))))


@group.command("reset-password")
@click.argument("name")
@OWNER
@click.option("--user", default="", help="The guest user (default: the image's login user).")
@click.option("--password-env", default="LOUCLOUD_VM_PASSWORD", show_default=True,
              help="Environment variable holding the new password.")
@audited("vms.reset_password")
def reset_password(name: str, owner: str, user: str, password_env: str) -> None:
    """Set a guest user's password in the running VM NAME (QEMU guest agent)."""
    password = os.environ.get(password_env, "")
    if not password:
        fail(_("put the new password in %(variable)s", variable=password_env))
    vm = service(lambda: state.find_vm(owner, name))
    click.echo(service(lambda: guest.reset_password(vm, user, password)))


@group.command("insert-iso")
@click.argument("name")
@click.argument("iso")
@OWNER
@audited("vms.insert_iso")
def insert_iso(name: str, iso: str, owner: str) -> None:
    """Put the ISO image ISO into the CD-ROM drive of the VM NAME of --owner."""
    vm = service(lambda: state.find_vm(owner, name))
    image = service(lambda: image_service.image_by_name(iso))
    click.echo(service(lambda: media.insert_iso(vm.owner, vm, image.id)))


@group.command("eject")
@click.argument("name")
@OWNER
@audited("vms.eject")
def eject(name: str, owner: str) -> None:
    """Empty the CD-ROM drive of the VM NAME of --owner (it boots from its disk)."""
    vm = service(lambda: state.find_vm(owner, name))
    click.echo(service(lambda: media.eject_iso(vm.owner, vm)))


@group.command("lost")
@click.option("--owner", default=None, help="Only this user's lost VMs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def lost(owner: str | None, as_json: bool) -> None:
    """List the VMs lost with a forgotten host (their records)."""
    viewer = service(lambda: user_service.user_by_name(owner)) if owner \
        else user_service.the_admin()
    if viewer is None:
        fail(_("no administrator yet: run init"))
    rows = [{"id": r.id, "name": r.name, "owner": r.owner.username, "host": r.host_name,
             "lost_at": r.lost_at.isoformat(timespec="seconds") + "Z",
             "address": r.ip_address or "", "vcpus": r.vcpus, "memory_mib": r.memory_mib,
             "disk_gib": r.disk_gib} for r in lost_service.lost_vms_for(viewer)]
    echo_rows(rows, as_json, ["id", "name", "owner", "host", "lost_at"])


@group.command("delete-lost")
@click.argument("name")
@OWNER
@audited("vms.delete_lost")
def delete_lost(name: str, owner: str) -> None:
    """Delete the record of the VM NAME of --owner, lost with a forgotten host."""
    user = service(lambda: user_service.user_by_name(owner))
    admin = acting_admin()
    for record in service(lambda: lost_service.lost_by_name(user, name)):
        click.echo(service(lambda: lost_service.delete_lost(admin, record)))
