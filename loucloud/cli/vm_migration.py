"""manage.py vms migrate (issue 14): move a VM to another host, as a task."""
import time

import click

from ..extensions import db
from ..models import Task
from ..services.vms import migration, state
from .common import audited, fail, service
from .tasks import acting_admin
from .vms import OWNER, group


def follow(task_id: int) -> Task:
    """Print a task's progress until it ends; exit 1 unless it succeeded."""
    last = None
    while True:
        db.session.commit()   # a new snapshot: the worker writes the row
        task = db.session.get(Task, task_id)
        line = f"{int(task.progress * 100)}% {task.message}"
        if line != last:
            click.echo(line)
            last = line
        if task.finished:
            break
        time.sleep(1)
    if task.state != "succeeded":
        if task.result:   # what it did before it stopped (a drain: each VM's line)
            click.echo(task.result)
        fail(f"task {task.id} {task.state}: {task.error}")
    click.echo(task.result)
    return task


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
    click.echo(f"task {task.id}: moving {name} from {vm.host.name}; see manage.py tasks show "
               f"{task.id}")
    if wait:
        follow(task.id)
