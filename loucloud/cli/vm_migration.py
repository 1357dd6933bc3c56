"""manage.py vms migrate (issue 14): move a VM to another host, as a task."""
import click
from flask_babel import gettext as _

from ..services.vms import migration, state
from .common import audited, service
from .tasks import acting_admin, follow
from .vms import OWNER, group


@group.command("migrate")
@click.argument("name")
@OWNER
@click.option("--to", "to", default=None, help="Target host (default: placement's choice).")
@click.option("--offline", is_flag=True, help="Only if it is shut off (its volumes copied).")
@click.option("--wait", is_flag=True, help="Follow the task until it ends.")
@audited("vms.migrate")
def migrate(name: str, owner: str, to: str | None, offline: bool, wait: bool) -> None:
    """Move the VM NAME of --owner to another host: live when it runs (its disks copied
    while it runs), offline when it is shut off."""
    vm = service(lambda: state.find_vm(owner, name))
    task = service(lambda: migration.migrate_vm(acting_admin(), vm,
                                                migration.target_by_name(to),
                                                offline=offline))
    click.echo(_("task %(id)s: moving %(name)s from %(host)s; see manage.py tasks show %(id)s",
                 id=task.id, name=name, host=vm.host.name))
    if wait:
        follow(task.id)
