from flask import Blueprint

bp = Blueprint("vms", __name__)

from . import routes  # noqa: E402,F401
from . import snapshot_routes  # noqa: E402,F401
from . import migration_routes  # noqa: E402,F401 (issue 14)
from . import disk_routes  # noqa: E402,F401  (issue 14: resize and disks)
