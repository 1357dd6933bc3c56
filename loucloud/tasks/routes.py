from flask import jsonify, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from ..errors import wants_json
from ..helpers import perform
from ..services import tasklist as task_service
from . import bp

STATES = ("", "active", "queued", "running", "succeeded", "failed", "cancelled")


@bp.route("/")
@login_required
def index():
    state = request.args.get("state", "")
    state = state if state in STATES else ""
    tasks = task_service.tasks_for(current_user, state=state)
    if wants_json() or request.args.get("format") == "json":
        return jsonify({"tasks": [task_service.as_dict(t) for t in tasks]})
    return render_template("tasks/index.html", tasks=tasks, state=state,
                           states=STATES, title=task_service.title)


@bp.route("/<int:task_id>")
@login_required
def detail(task_id: int):
    task = task_service.task_for(current_user, task_id)
    if wants_json() or request.args.get("format") == "json":
        return jsonify(task_service.as_dict(task))
    return render_template("tasks/detail.html", task=task, title=task_service.title)


@bp.route("/<int:task_id>/cancel", methods=["POST"])
@login_required
def cancel(task_id: int):
    task_service.task_for(current_user, task_id)  # someone else's: 404, like a VM
    return perform(lambda: task_service.cancel(current_user, task_id),
                   done=lambda t: _("Task %(id)s cancelled.", id=t.id) if t.state == "cancelled"
                   else _("Task %(id)s stops at its next step.", id=t.id),
                   back=url_for("tasks.detail", task_id=task_id))


@bp.route("/<int:task_id>/retry", methods=["POST"])
@login_required
def retry(task_id: int):
    task_service.task_for(current_user, task_id)
    return perform(lambda: task_service.retry(current_user, task_id),
                   done=lambda t: _("Task %(id)s queued (a new try of task %(old)s).", id=t.id,
                                    old=task_id),
                   back=lambda t: url_for("tasks.detail", task_id=t.id) if t else
                   url_for("tasks.detail", task_id=task_id))
