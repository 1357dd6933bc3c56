from flask import Blueprint

bp = Blueprint("groups", __name__, url_prefix="/groups")


def operations() -> list[str]:
    """What a group's page offers on the members' VMs (access.OPERATIONS), in the VM
    page's order."""
    from ..services.access import OPERATIONS
    from ..services.vms.lifecycle import ACTIONS

    return [a for a in ACTIONS if a in OPERATIONS]


from . import routes  # noqa: E402,F401
from . import member_routes  # noqa: E402,F401
