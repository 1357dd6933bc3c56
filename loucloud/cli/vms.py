"""manage.py vms create|list|<action>|delete"""
import click
from flask.cli import AppGroup

from ..services import hosts as host_service
from ..services import users as user_service
from ..services import templates as template_service
from ..services.vms import lifecycle, state
from .common import audited, echo_rows, fail, service

group = AppGroup("vms", help="Virtual machines.")
OWNER = click.option("--owner", required=True, help="User name of the owner.")


@group.command("create")
@click.argument("name")
@OWNER
@click.option("--template", "template_name", required=True)
@click.option("--host", "host_name", default=None, help="Host (default: placement).")
@click.option("--no-start", is_flag=True, help="Leave it shut off.")
@audited("vms.create")
def create(name, owner, template_name, host_name, no_start) -> None:
    """Create the VM NAME for --owner from --template."""
    vm = service(lambda: lifecycle.create_vm(
        user_service.user_by_name(owner), name, template_service.template_by_name(template_name),
        host_service.host_by_name(host_name) if host_name else None, start=not no_start))
    click.echo(f"created {vm.name} on {vm.host.name}")


@group.command("list")
@click.option("--owner", default=None, help="Only this user's VMs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(owner: str | None, as_json: bool) -> None:
    """List VMs with libvirt's live state."""
    viewer = service(lambda: user_service.user_by_name(owner)) if owner \
        else user_service.the_admin()
    if viewer is None:
        fail("no administrator yet: run init")
    page = state.list_vms(viewer, per_page=1_000_000)
    echo_rows([v.as_dict() for v in page.items], as_json,
              ["id", "name", "owner", "host", "state", "vcpus", "memory_mib"])


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
    """Delete the VM NAME of --owner with its disk."""
    click.echo(service(lambda: lifecycle.delete_vm(state.find_vm(owner, name))))
