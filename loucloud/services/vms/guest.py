"""Inside the guest: its login password reset through the QEMU guest agent (every
domain LouCloud makes has the agent's channel), and what the agent says of the
guest's addresses (asked by the sampler, stored, shown by every page)."""
from __future__ import annotations

import logging
import re

from flask_babel import gettext as _

from ...models import VM, utcnow
from ...virt import AgentUnavailable, InvalidState, VirtError
from ...virt.driver import on_each
from .. import Conflict, FieldError, transaction
from .. import networks as network_service
from ..hypervisors import hypervisor
from ..passwords import password_problem
from .lifecycle import refusal

log = logging.getLogger(__name__)

LOGIN_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


def check_login(user: str) -> str:
    user = (user or "").strip()
    if not LOGIN_RE.match(user):
        raise FieldError(_("Use a Linux user name: lower-case letters, digits, '_' or '-', "
                           "at most 32."), "user")
    return user


@transaction
def reset_password(vm: VM, user: str, password: str) -> str:
    """Set the password of ``user`` inside the running guest through its agent.
    Returns the message for the person (never the password). Raises FieldError,
    Conflict (not running, no agent answering), Unavailable."""
    user = check_login(user or vm.image.login_user)
    problem = password_problem(password or "", user)
    if problem:
        raise FieldError(problem, "password")
    try:
        hypervisor(vm.host).set_user_password(vm.uuid, user, password)
    except AgentUnavailable:
        raise Conflict(_("No guest agent answers in %(name)s: the guest is still booting, "
                         "or has no qemu-guest-agent running. Nothing was changed.",
                         name=vm.name)) from None
    except InvalidState as exc:
        raise Conflict(_("%(name)s: %(error)s. Start it first.", name=vm.name,
                         error=exc)) from None
    except VirtError as exc:
        raise refusal(vm, exc, _("The guest refused: %(error)s", error=exc)) from None
    log.info("password of %s reset in VM %s", user, vm.name)
    return _("The password of %(user)s in %(name)s was changed.", user=user, name=vm.name)


def collect_agent_addresses(vms: list[VM]) -> int:
    """Ask the agents of these running VMs for their addresses (hosts in parallel, in
    the sampler, never for a page) and store what they say. Returns how many answered."""
    by_host: dict[str, list[VM]] = {}
    for vm in vms:
        by_host.setdefault(vm.host.uri, []).append(vm)

    def ask(hv):
        found = {}
        for vm in by_host[hv.uri]:
            try:
                macs = hv.agent_addresses(vm.uuid)
            except VirtError:
                continue
            found[vm.id] = [a for addrs in macs.values() for a in addrs]
        return found

    results = on_each([hypervisor(vms[0].host) for vms in by_host.values()], ask)
    found = {}
    for result in results.values():
        if not isinstance(result, VirtError):
            found.update(result)
    network_service.store_guest_addresses(found, utcnow())
    return len(found)
