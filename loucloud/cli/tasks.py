"""manage.py tasks list|show|ping|cancel|retry, and manage.py worker."""
import json
import logging
import threading

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext
from flask_babel import gettext as _

from ..logs import configure as configure_logging
from ..services import tasklist
from ..services import tasks as task_service
from ..services import users as user_service
from .common import audited, echo_rows, fail, service, task_state

group = AppGroup("tasks", help="Long work run by the worker (manage.py worker).")


def acting_admin():
    admin = user_service.the_admin()
    if admin is None:
        fail(_("There is no administrator yet: run manage.py init first."))
    return admin


def follow(task_id: int) -> None:
    """Print a task's progress until it ends; exit 1 when it did not succeed (after
    what it did before it stopped: a drain's line per VM)."""
    task = tasklist.wait_for(task_id, say=click.echo)
    if task.state != "succeeded":
        if task.result:
            click.echo(tasklist.says(task.result))
        fail(_("task %(id)s %(state)s: %(message)s", id=task.id, state=task_state(task.state),
               message=tasklist.says(task.error or task.message)))
    click.echo(tasklist.says(task.result) or _("done"))


@group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--state", default="", type=click.Choice(
    ["", "active", "queued", "running", "succeeded", "failed", "cancelled"]))
def list_(as_json: bool, state: str) -> None:
    """The latest tasks, newest first (everybody's)."""
    rows = [tasklist.as_dict(t) for t in tasklist.tasks_for(None, state=state)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        row["progress"] = f"{round(row['progress'] * 100)} %"
        row["target"] = row["target"]["name"]
        row["says"] = row["error"] or row["message"]
    echo_rows(rows, False, ["id", "kind", "target", "owner", "state", "progress", "says"])


@group.command("show")
@click.argument("task_id", type=int)
def show(task_id: int) -> None:
    """One task, as JSON."""
    task = service(lambda: tasklist.task_for(acting_admin(), task_id))
    click.echo(json.dumps(tasklist.as_dict(task), indent=2))


@group.command("ping")
@click.option("--no-wait", is_flag=True, help="Queue it and return.")
def ping(no_wait: bool) -> None:
    """Queue a no-op task and wait for the worker to run it (is the worker alive?)."""
    task = tasklist.ping(acting_admin())
    click.echo(_("task %(id)s queued", id=task.id))
    if not no_wait:
        follow(task.id)


@group.command("cancel")
@click.argument("task_id", type=int)
@audited("tasks.cancel", "task_id")
def cancel(task_id: int) -> None:
    """Cancel a queued or running task."""
    task = service(lambda: tasklist.cancel(acting_admin(), task_id))
    click.echo(_("task %(id)s: %(message)s", id=task.id, message=tasklist.says(task.message)))


@group.command("retry")
@click.argument("task_id", type=int)
@audited("tasks.retry", "task_id")
def retry(task_id: int) -> None:
    """Run a failed or cancelled task again (a new task)."""
    task = service(lambda: tasklist.retry(acting_admin(), task_id))
    click.echo(_("task %(id)s queued", id=task.id))


@click.command("worker")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 32),
              help="Tasks run at once.")
@with_appcontext
def worker_command(workers: int) -> None:
    """Run the tasks (image copies, ...) from the queue: TASK_BROKER, by default an SQLite
    file of the instance folder. Tasks a stopped worker left are queued again."""
    from .. import taskqueue

    configure_logging(current_app.config)
    app = current_app._get_current_object()
    name = task_service.worker_name()
    found = task_service.recover()
    queue = app.config["TASK_BROKER"] or "sqlite (instance/tasks.sqlite)"
    if found:
        click.echo(_("worker %(name)s: %(workers)s at once, queue %(queue)s; %(found)s "
                     "task(s) left by a stopped worker handled", name=name, workers=workers,
                     queue=queue, found=found))
    else:
        click.echo(_("worker %(name)s: %(workers)s at once, queue %(queue)s", name=name,
                     workers=workers, queue=queue))
    stop = threading.Event()

    def beat() -> None:  # heartbeats of this worker's tasks; others' stale tasks
        with app.app_context():
            rounds = 0
            while not stop.wait(task_service.BEAT_SECONDS):
                try:
                    task_service.beat(name)
                    rounds += 1
                    if rounds % 6 == 0:
                        task_service.recover()
                except Exception:
                    logging.getLogger(__name__).exception("worker heartbeat failed")
                    from ..extensions import db
                    db.session.rollback()

    threading.Thread(target=beat, name="beat", daemon=True).start()
    try:
        taskqueue.run_worker(app, workers)
    finally:
        stop.set()
