from flask import Blueprint

bp = Blueprint("batches", __name__, url_prefix="/batches")

from . import routes  # noqa: E402,F401
