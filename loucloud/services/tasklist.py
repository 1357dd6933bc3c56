"""Tasks as people see them: theirs (the administrator: everybody's), one task, the
running tasks of an image or a VM, cancel, try again, the JSON shape, and following a
task from the command line. Running them is services/tasks.py."""
from __future__ import annotations

import json
import time

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..extensions import db
from ..models import INT64_MAX, Task, User
from . import Conflict, NotFound, ServiceError, paginate, said, transaction
from .access import may_see_task
from .tasks import CANCELLING, KINDS, TaskContext, finish, kind, start, worker_name

# A task's state as people read it (the state itself is data: "queued", "running"...).
STATE_LABELS = {"queued": _l("queued"), "running": _l("running"),
                "succeeded": _l("succeeded"), "failed": _l("failed"),
                "cancelled": _l("cancelled")}
# Refusing to cancel a task that has ended, for each way it can have ended.
_ENDED = {"succeeded": _l("Task %(id)s has already succeeded."),
          "failed": _l("Task %(id)s has already failed."),
          "cancelled": _l("Task %(id)s has already cancelled.")}


def state_label(state: str) -> str:
    """A task's state in the reader's language."""
    return str(STATE_LABELS[state]) if state in STATE_LABELS else state


def says(text: str | None) -> str | None:
    """What a task says (its message, result or error), in the reader's language: the
    worker stores its messages with their values (said.py), said here in the reader's
    language; the messages LouCloud writes in English when they hold no values
    ("Waiting for the worker.", "Done.") are found in the catalogue; any other text
    (older rows, libvirt's own words) is shown as it was written."""
    return said.render(text)


def task_for(user: User, task_id: int) -> Task:
    task = db.session.get(Task, task_id) if 0 < task_id <= INT64_MAX else None
    if not may_see_task(user, task):
        raise NotFound()
    return task


def _visible(user: User | None, state: str):
    """The tasks ``user`` may see (the administrator, or None for the command line:
    everybody's), newest first; ``state`` "active" is queued and running."""
    stmt = db.select(Task).order_by(Task.id.desc())
    if user is not None and not user.is_admin:
        stmt = stmt.where(Task.owner_id == user.id)
    if state == "active":
        stmt = stmt.where(Task.state.in_(("queued", "running")))
    elif state:
        stmt = stmt.where(Task.state == state)
    return stmt


def tasks_for(user: User | None, *, state: str = "", limit: int = 200) -> list[Task]:
    """The latest tasks ``user`` may see (the tasks page, the command line)."""
    return db.session.execute(_visible(user, state).limit(limit)).scalars().all()


def tasks_page(user: User, *, state: str = "", page: int = 1, per_page: int = 50):
    """A page of the tasks ``user`` may see, newest first (the API's list)."""
    return paginate(_visible(user, state), page, per_page)


def active_for(target_type: str, target_id: int) -> list[Task]:
    """Queued and running tasks of one image, VM or host (for its page)."""
    return db.session.execute(db.select(Task).where(
        Task.target_type == target_type, Task.target_id == target_id,
        Task.state.in_(("queued", "running"))).order_by(Task.id)).scalars().all()


@transaction
def cancel(user: User, task_id: int) -> Task:
    """Stop a task: a queued one at once (its kind's on_stop undoes what the request
    that started it held; it must not wait on a host: this is a web request), a running
    one at its next progress report (it tidies up what it had done)."""
    task = task_for(user, task_id)
    if task.finished:
        raise Conflict(str(_ENDED[task.state]) % {"id": task.id} if task.state in _ENDED
                       else _("Task %(id)s has already ended.", id=task.id))
    task.cancel_requested = True
    if task.state == "queued":
        finish(task, "cancelled")
        k = KINDS.get(task.kind)
        if k and k.on_stop:
            k.on_stop(TaskContext(task, k), "cancelled")
            db.session.commit()
    else:
        task.message = CANCELLING   # in English: says() translates it when shown
        db.session.commit()
    return task


@transaction
def retry(user: User, task_id: int) -> Task:
    """Run a failed or cancelled task again, as a new task with the same arguments."""
    task = task_for(user, task_id)
    if task.state not in ("failed", "cancelled"):
        raise Conflict(_("Task %(id)s is %(state)s; only a failed or cancelled task can be "
                         "tried again.", id=task.id, state=state_label(task.state)))
    k = KINDS.get(task.kind)
    if k is None:
        raise ServiceError(_("No worker knows the task kind %(kind)s.", kind=task.kind))
    if k.admin_only and not user.is_admin:
        raise NotFound()
    return start(task.kind, task.owner or user, target_type=task.target_type,
                 target_id=task.target_id, target_name=task.target_name,
                 args=json.loads(task.args or "{}"))


def title(task: Task) -> str:
    """What the task does (its kind's title), in the reader's language: the titles are
    marked where their kinds are registered (@tasks.kind), and found in the catalogue
    by their English."""
    k = KINDS.get(task.kind)
    return _(str(k.title)) if k else task.kind


def as_dict(task: Task) -> dict:
    return {"id": task.id, "kind": task.kind, "title": title(task),
            "owner": task.owner.username if task.owner else None,
            "target": {"type": task.target_type, "id": task.target_id,
                       "name": task.target_name},
            "state": task.state, "progress": round(task.progress, 4),
            "remaining_seconds": task.remaining_seconds, "message": says(task.message),
            "result": says(task.result), "error": says(task.error), "attempts": task.attempts,
            "max_attempts": task.max_attempts,
            "created_at": _iso(task.created_at), "started_at": _iso(task.started_at),
            "finished_at": _iso(task.finished_at), "retry_at": _iso(task.retry_at)}


def _iso(value) -> str | None:
    return value.isoformat() + "Z" if value else None


def wait_for(task_id: int, say=lambda _t: None, poll: float = 0.5) -> Task:
    """Follow a task until it ends (the CLI), saying its progress as it changes."""
    last = None
    waited = 0.0
    while True:
        # A new transaction each time: MariaDB's REPEATABLE READ would otherwise show this
        # loop the task as its first read saw it, for ever (found with two servers).
        db.session.rollback()
        task = db.session.get(Task, task_id)
        line = (task.state, round(task.progress * 100), task.message)
        if line != last:
            if task.remaining_seconds and task.state == "running":
                said = _("%(state)s: %(percent)s %%, about %(seconds)s s left. %(message)s",
                         state=state_label(task.state), percent=line[1],
                         seconds=task.remaining_seconds, message=says(task.message))
            else:
                said = _("%(state)s: %(percent)s %%. %(message)s",
                         state=state_label(task.state), percent=line[1],
                         message=says(task.message))
            say("  " + said)
            last = line
        if task.finished:
            return task
        if task.state == "queued" and task.attempts == 0 and waited > 10:
            say("  " + _("(still queued: is the worker running? manage.py worker)"))
            waited = -600
        time.sleep(poll)
        waited += poll


@kind("ping", _l("Check that the worker answers"), attempts=1, timeout=60, admin_only=False)
def _ping(ctx: TaskContext):
    return _l("The worker %(name)s answered.", name=worker_name())


def ping(owner: User | None) -> Task:
    return start("ping", owner, target_name="worker")
