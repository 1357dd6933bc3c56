"""Placement: which host takes a new VM (it holds the image, accepts VMs, has the
template's network active, and has the most free memory), where its screen listens
there, and which CPU model its guest sees."""
from __future__ import annotations

import ipaddress
import logging
import socket
from urllib.parse import urlsplit

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString

from ...extensions import cache, db
from ...models import Host, ImageLocation, Template
from ...virt import VirtError
from ...virt.driver import on_each
from .. import Conflict, FieldError, Unavailable
from ..hypervisors import hypervisor
from ..settings import get_settings

log = logging.getLogger(__name__)
BASELINE_KEY = "loucloud:cpu-baseline"
BASELINE_SECONDS = 600


def nic_of(template: Template) -> tuple[str, str]:
    """(kind, source) of the template's NIC: a libvirt network by name (the template's,
    else Settings' network), a host bridge, or "none"."""
    if template.nic_kind == "bridge":
        return "bridge", template.network or ""
    if template.nic_kind == "none":
        return "none", ""
    return "network", template.network or get_settings().network


def candidate_hosts(template: Template) -> list[Host]:
    """Hosts that accept new VMs (not excluded, not being drained) and hold the
    template's image."""
    return db.session.execute(
        db.select(Host).join(ImageLocation, ImageLocation.host_id == Host.id)
        .where(ImageLocation.image_id == template.image_id, ImageLocation.present.is_(True),
               Host.accepts_vms.is_(True), Host.draining.is_(False))
        .order_by(Host.name)).scalars().all()


def _fit(hv, kind: str, source: str):
    """The host's free memory, after checking it can take the NIC (a session daemon
    gives user-mode networking whatever the template says); else why not (lazy: this
    runs in a thread of on_each, the reason is said in the request's language later)."""
    load = hv.load(cpu=False)
    if kind == "network" and not hv.uri.rstrip("/").endswith("/session"):
        net = next((n for n in hv.networks() if n.name == source), None)
        if net is None:
            return _l("there is no network %(network)s", network=source)
        if not net.active:
            return _l("the network %(network)s is not active", network=source)
    return load


def choose_host(template: Template) -> Host:
    """The online candidate host with the template's network active and the most free
    memory (hosts asked in parallel)."""
    return ranked_hosts(template)[0][0]


def ranked_hosts(template: Template) -> list[tuple[Host, int]]:
    """The online candidate hosts with the template's network active, each with its
    free memory (MiB), the most free first (hosts asked in parallel; a tie goes to the
    first by name). Raises Conflict when no host holds the image, Unavailable when none
    can take a VM now (each host's reason)."""
    hosts = candidate_hosts(template)
    if not hosts:   # the pool as it is set up, not a passing outage: 409
        raise Conflict(_("No host accepting new VMs holds the image %(image)s.",
                         image=template.image.name))
    kind, source = nic_of(template)
    fits = on_each([hypervisor(h) for h in hosts], lambda hv: _fit(hv, kind, source))
    ranked = sorted(((fit.memory_free_mib, -i, h) for i, h in enumerate(hosts)
                     if not isinstance(fit := fits[h.uri], (VirtError, str, LazyString))),
                    key=lambda t: t[:2], reverse=True)
    if not ranked:
        reasons = "; ".join(_why_not(h, fits[h.uri]) for h in hosts)
        raise Unavailable(_("No host can take this VM now: %(reasons)s.", reasons=reasons))
    return [(host, free) for free, _order, host in ranked]


def _why_not(host: Host, fit) -> str:
    """Why the host cannot take the VM (apart, so that the messages are extracted)."""
    if isinstance(fit, VirtError):
        return _("%(host)s: offline, %(error)s", host=host.name, error=fit)
    return _("%(host)s: %(reason)s", host=host.name, reason=fit)


def check_host_for(template: Template, host: Host) -> None:
    """Refuse a host the administrator chose that lacks the template's image."""
    if host.id not in {loc.host_id for loc in template.image.locations if loc.present}:
        raise FieldError(_l("The image %(image)s is not on %(host)s.",
                            image=template.image.name, host=host.name), "host_id")


def vnc_listen_for(host: Host) -> str:
    """The address the VM's VNC server listens on: the Settings policy, else loopback
    for a local host and the host's own address for a remote one. Never 0.0.0.0."""
    policy = get_settings().vnc_listen
    if policy != "auto":
        return policy
    address = urlsplit(host.uri).hostname
    if not address or host.is_demo:
        return "127.0.0.1"
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        pass
    try:
        return socket.getaddrinfo(address, None, proto=socket.IPPROTO_TCP)[0][4][0]
    except OSError:
        raise FieldError(_("Cannot resolve %(address)s to choose where VNC listens; set "
                           "the VNC listen address in Settings.", address=address)) from None


def cpu_baseline(host: Host) -> str | None:
    """The CPU every KVM host of the pool can run, computed by libvirt on ``host`` from
    each host's host-model CPU; kept ten minutes. None when it cannot be computed now
    (a host offline, no KVM): the VM then gets its host's model."""
    cached = cache.get(BASELINE_KEY)
    if cached is not None:
        return cached or None
    hosts = db.session.execute(db.select(Host)).scalars().all()
    cpus = on_each([hypervisor(h) for h in hosts], lambda hv: hv.host_cpu())
    found = [c for c in cpus.values() if isinstance(c, str)]
    if not found or len(found) != len(hosts):
        log.warning("CPU baseline not computed: %s", {h.name: str(cpus[h.uri])[:80]
                                                        for h in hosts})
        return None
    try:
        baseline = hypervisor(host).baseline_cpu(found)
    except VirtError as exc:
        log.warning("CPU baseline not computed on %s: %s", host.name, exc)
        return None
    cache.set(BASELINE_KEY, baseline, timeout=BASELINE_SECONDS)
    return baseline
