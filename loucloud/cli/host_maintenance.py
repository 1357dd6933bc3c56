"""manage.py hosts drain|undrain|forget|migration-address (issue 14)."""
import click
from flask_babel import gettext as _

from ..services import hosts as host_service
from ..services import maintenance, tasklist
from .common import audited, fail, service, task_state
from .hosts import group
from .tasks import acting_admin, follow


@group.command("migration-address")
@click.argument("name")
@click.argument("address", required=False, default="")
@audited("hosts.migration_address")
def migration_address(name: str, address: str) -> None:
    """Set where the other hosts reach the host NAME for migrations (nothing: the host
    part of its URI)."""
    host = service(lambda: host_service.host_by_name(name))
    host = service(lambda: maintenance.set_migration_address(acting_admin(), host, address))
    if host.migration_address:
        click.echo(_("%(name)s: migration address %(address)s", name=host.name,
                     address=host.migration_address))
    else:
        click.echo(_("%(name)s: migration address (the host part of its URI)",
                     name=host.name))


@group.command("drain")
@click.argument("name")
@click.option("--wait", is_flag=True, help="Follow the task until it ends.")
@audited("hosts.drain")
def drain(name: str, wait: bool) -> None:
    """Stop the host NAME accepting VMs and move each of its VMs to other hosts."""
    host = service(lambda: host_service.host_by_name(name))
    task = service(lambda: maintenance.drain(acting_admin(), host))
    click.echo(_("task %(id)s: draining %(name)s", id=task.id, name=name))
    if wait:
        follow(task.id)


@group.command("drain-status")
@click.argument("name")
def drain_status(name: str) -> None:
    """The latest drain of the host NAME: its state, and each VM's line (moved where,
    moving, waiting, or why it could not move)."""
    host = service(lambda: host_service.host_by_name(name))
    task = maintenance.last_drain(host)
    if task is None:
        fail(_("%(name)s was never drained", name=name))
    if task.finished:
        click.echo(_("task %(id)s %(state)s", id=task.id, state=task_state(task.state)))
    else:
        click.echo(_("task %(id)s %(state)s %(percent)s%% %(message)s", id=task.id,
                     state=task_state(task.state), percent=int(task.progress * 100),
                     message=tasklist.says(task.message)))
    head, rows = maintenance.drain_lines(task)
    if head:
        click.echo(head)
    for vm_name, what in rows:
        click.echo(f"  {vm_name}: {what}")
    if task.finished and task.error and not rows:
        click.echo(tasklist.says(task.error))


@group.command("undrain")
@click.argument("name")
@audited("hosts.undrain")
def undrain(name: str) -> None:
    """The host NAME accepts VMs again."""
    host = service(lambda: host_service.host_by_name(name))
    service(lambda: maintenance.undrain(acting_admin(), host))
    click.echo(_("%(name)s accepts VMs again", name=name))


@group.command("forget")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@audited("hosts.forget")
def forget(name: str, yes: bool) -> None:
    """Remove the offline host NAME with its VMs (their owners see them marked lost,
    their quota freed); what it holds is removed if it is ever added back."""
    host = service(lambda: host_service.host_by_name(name))
    lost = [f"{vm.name} ({vm.owner.username})" for vm in maintenance.lost_with(host)]
    question = _("Forget %(name)s and lose its %(count)s VM(s), marked lost for their "
                 "owners: %(vms)s?", name=name, count=len(lost), vms=", ".join(lost)) \
        if lost else _("Forget %(name)s?", name=name)
    if not yes and not click.confirm(question):
        fail(_("nothing was changed"))
    click.echo(service(lambda: maintenance.forget_host(acting_admin(), host)))
