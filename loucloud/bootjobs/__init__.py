from flask import Blueprint

bp = Blueprint("bootjobs", __name__, url_prefix="/bootjobs")

from . import routes  # noqa: E402,F401
