from flask import Blueprint

bp = Blueprint("images", __name__, url_prefix="/images")

from . import routes  # noqa: E402,F401
from . import uploads  # noqa: E402,F401
