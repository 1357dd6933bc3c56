"""The Volumes page (issue 14, admin): every volume of LouCloud's pool on every host,
whose it is, and the orphans, which can be deleted."""
from flask import Blueprint

bp = Blueprint("volumes", __name__, url_prefix="/volumes")

from . import routes  # noqa: E402,F401
