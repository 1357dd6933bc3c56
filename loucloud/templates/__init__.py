from flask import Blueprint

bp = Blueprint("templates", __name__, url_prefix="/templates")

from . import routes  # noqa: E402,F401
