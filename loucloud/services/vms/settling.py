"""Where a VM is after its migration ended, however it ended (vms/moving.py's task, a
failure, a cancel, a libvirtd killed or a link cut in the middle): ``settle`` looks at
both hosts until one holds the VM, never leaving two live copies."""
from __future__ import annotations

import logging
import time

from ...models import VM, Host, Leftover
from ...virt import DomainNotFound, HostUnavailable, VirtError
from .. import leftovers
from ..hypervisors import hypervisor

log = logging.getLogger(__name__)

SETTLE_SECONDS = 180     # how long to wait for a host to answer before deciding
LIVE = ("running", "paused")


def _look(hv, uuid: str):
    try:
        return hv.locate(uuid)
    except HostUnavailable:
        return HostUnavailable
    except VirtError:
        return HostUnavailable


def settle(vm: VM, source: Host, target: Host, *, was: str = "running",
           wait: float = SETTLE_SECONDS, call: str | None = None) -> tuple[str, str]:
    """Where the VM is after a migration ended however it ended: ("target", state),
    ("source", state) or ("unknown", ""). ``call``: how libvirt's migrate call ended
    ("succeeded", "failed"; None: not known). Never two copies: when both hosts hold a
    live copy (a libvirtd killed mid-migration and restarted, its job not ended as the
    other host's was) the one that is not the VM is removed at once (``_keep``); a
    source left paused by a failed migration is resumed. Waits up to ``wait`` s for a
    host that does not answer."""
    src, dst = hypervisor(source), hypervisor(target)
    deadline = time.monotonic() + wait
    while True:
        s, t = _look(src, vm.uuid), _look(dst, vm.uuid)
        late = time.monotonic() > deadline
        log.info("settling %s: %s on %s, %s on %s%s", vm.name, _said(s), source.name,
                 _said(t), target.name, " (late)" if late else "")
        try:
            found = _decide(vm, src, dst, s, t, was, late, call, (source, target))
        except VirtError as exc:   # a libvirtd still busy recovering: look again
            log.info("settling %s: %s", vm.name, exc)
            found = None
        if found is not None:
            return found
        if late:
            return "unknown", ""
        time.sleep(2)


def _said(state) -> str:
    return "no answer" if state is HostUnavailable else state or "nothing"


def _keep(s: str, t: str, call: str | None, late: bool) -> str | None:
    """Both hosts hold a live copy: which one is the VM ("source", "target"; None: look
    again). A running copy beside a paused one is the live one: a source runs again only
    when its migration failed (libvirt resumes it), a target only once it finished (the
    source then stays paused until it is removed). Two copies alike are told apart by
    how libvirt's migrate call ended; when that is not known, after the wait, the source
    is kept."""
    if s != t:
        return "source" if s == "running" else "target"
    if call == "succeeded":
        return "target"
    if call == "failed" or late:
        return "source"
    return None


def _drop(hv, host: Host, vm: VM) -> None:
    """Remove the copy that is not the VM; one its libvirtd cannot remove now (a job of
    the killed libvirtd still holding it) is paused, and remembered to remove later."""
    try:
        hv.remove(vm.uuid)
    except DomainNotFound:
        pass   # its libvirtd ended it meanwhile
    except VirtError as exc:
        log.warning("%s's copy on %s not removed now: %s", vm.name, host.name, exc)
        leftovers.remember(host, Leftover.DOMAIN, vm.uuid, "", str(exc))


def _decide(vm: VM, src, dst, s, t, was: str, late: bool, call: str | None = None,
            hosts: tuple[Host, Host] = (None, None)):
    """One look at both hosts (``hosts``: source, target): the outcome, or None to look
    again. ``call``: how the migrate call ended ("succeeded", "failed"; None: not
    known)."""
    if s in LIVE and t in LIVE:
        keep = _keep(s, t, call, late)
        if keep is None:
            return None
        log.error("%s is held on both hosts (%s on the source, %s on the target): the "
                  "%s's copy is removed", vm.name, s, t,
                  "source" if keep == "target" else "target")
        if keep == "target":
            _drop(src, hosts[0], vm)
            s = None
        else:
            _drop(dst, hosts[1], vm)
            t = None
    if t in LIVE and s not in LIVE and s is not HostUnavailable:
        if t == "paused" and was == "running":
            if not late:
                return None   # still finishing (or being ended) on the target
            dst.act(vm.uuid, "resume")
            t = "running"
        return "target", t
    if t == "shut off" and was == "shut off" and s is None:
        return "target", t
    if s in LIVE and t is not HostUnavailable:
        if s == "paused" and was == "running":
            src.act(vm.uuid, "resume")
            s = "running"
        return "source", s
    if s == "shut off" and was == "shut off":
        return "source", s
    if late:
        if t in LIVE and s is HostUnavailable:
            return "target", t   # the source is gone and the target runs it
        if s in LIVE or s == "shut off":
            return "source", s
    return None
