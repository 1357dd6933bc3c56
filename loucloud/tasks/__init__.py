"""The Tasks page: long work run by the worker (the administrator sees all, a user his
own), with JSON for scripts and for the pages that follow a task."""
from flask import Blueprint

bp = Blueprint("tasks", __name__, url_prefix="/tasks")

from . import routes  # noqa: E402,F401
