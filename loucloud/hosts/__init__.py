from flask import Blueprint

bp = Blueprint("hosts", __name__, url_prefix="/hosts")

from . import routes  # noqa: E402,F401
from . import maintenance_routes  # noqa: E402,F401 (issue 14)
