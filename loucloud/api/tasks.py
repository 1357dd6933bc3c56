"""/api/v1/tasks: long work (image copies, migrations, drains...) as the tasks page shows
it: the caller's tasks (every task for the administrator), one task with its progress,
cancel, try again. The same service functions as loucloud/tasks/routes.py and
`manage.py tasks`."""
from __future__ import annotations

import marshmallow as ma
from flask import url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..services import tasklist as task_service
from .common import PageArgs, blueprint, page_of, page_schema

blp = blueprint("tasks", "Long work run by the worker: the caller's tasks (every task for "
                         "the administrator).")
URL = "/tasks"

STATES = ["", "active", "queued", "running", "succeeded", "failed", "cancelled"]


class TaskTargetSchema(ma.Schema):
    type = ma.fields.String(required=True, metadata={
        "description": "image, vm, host, or empty"})
    id = ma.fields.Integer(required=True, allow_none=True)
    name = ma.fields.String(required=True)


class TaskSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    kind = ma.fields.String(required=True, metadata={"description": "image.copy, ping..."})
    title = ma.fields.String(required=True, metadata={"description": "What it does"})
    owner = ma.fields.String(required=True, allow_none=True, metadata={
        "description": "Who started it (their username)"})
    target = ma.fields.Nested(TaskTargetSchema, required=True)
    state = ma.fields.String(required=True, metadata={
        "description": "queued, running, succeeded, failed or cancelled"})
    progress = ma.fields.Float(required=True, metadata={"description": "From 0 to 1"})
    remaining_seconds = ma.fields.Integer(required=True, allow_none=True, metadata={
        "description": "About how long it still takes, when known"})
    message = ma.fields.String(required=True, metadata={"description": "Where it stands"})
    result = ma.fields.String(required=True, metadata={"description": "What it did"})
    error = ma.fields.String(required=True, metadata={"description": "Why it failed"})
    attempts = ma.fields.Integer(required=True)
    max_attempts = ma.fields.Integer(required=True)
    created_at = ma.fields.String(required=True, metadata={"description": "ISO 8601, UTC"})
    started_at = ma.fields.String(required=True, allow_none=True)
    finished_at = ma.fields.String(required=True, allow_none=True)
    retry_at = ma.fields.String(required=True, allow_none=True, metadata={
        "description": "When the worker tries again after a failed attempt"})


TaskPageSchema = page_schema(TaskSchema, "TaskPage")


class TaskListArgs(PageArgs):
    state = ma.fields.String(load_default="", validate=ma.validate.OneOf(STATES), metadata={
        "description": "active: queued or running"})


class TaskMessageSchema(ma.Schema):
    message = ma.fields.String(required=True)
    task = ma.fields.Nested(TaskSchema, required=True)


def task_url(task_id: int) -> str:
    """Where a task is read: the answer's Location for long work (202)."""
    return url_for("api_tasks.get_task", task_id=task_id)


@blp.route("")
@blp.arguments(TaskListArgs, location="query")
@blp.response(200, TaskPageSchema)
def list_tasks(args):
    """The tasks the caller may see, newest first; filtered by state as the tasks page."""
    page = task_service.tasks_page(current_user, state=args["state"], page=args["page"],
                                   per_page=args["limit"])
    return page_of([task_service.as_dict(t) for t in page.items], page=page.page,
                   pages=page.pages, limit=args["limit"], total=page.total)


@blp.route("/<int:task_id>")
@blp.response(200, TaskSchema)
def get_task(task_id: int):
    """One task: its state, progress, time left, and its result or error."""
    return task_service.as_dict(task_service.task_for(current_user, task_id))


@blp.route("/<int:task_id>/cancel", methods=["POST"])
@blp.response(200, TaskMessageSchema)
def cancel_task(task_id: int):
    """Cancel a task: a queued one at once, a running one at its next step.

    409 once it has ended."""
    task = task_service.cancel(current_user, task_id)
    message = _("Task %(id)s cancelled.", id=task.id) if task.state == "cancelled" else \
        _("Task %(id)s stops at its next step.", id=task.id)
    return {"message": message, "task": task_service.as_dict(task)}


@blp.route("/<int:task_id>/retry", methods=["POST"])
@blp.response(202, TaskSchema)
def retry_task(task_id: int):
    """Run a failed or cancelled task again, as a new task.

    Answers 202 with the new task's URL in Location."""
    task = task_service.retry(current_user, task_id)
    return task_service.as_dict(task), 202, {"Location": task_url(task.id)}
