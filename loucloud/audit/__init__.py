"""The audit blueprint (the administrator's page) and the hook that records every
state-changing request."""
from flask import Blueprint

bp = Blueprint("audit", __name__, url_prefix="/audit")

from . import routes  # noqa: E402,F401
from .hook import register  # noqa: E402,F401
