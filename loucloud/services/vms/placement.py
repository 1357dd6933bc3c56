"""Placement: which host takes a new VM, and where its screen listens there."""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from ...extensions import db
from ...models import ImageLocation, Host, Template
from ...virt import VirtError
from ...virt.driver import on_each
from .. import FieldError, Unavailable
from ..hypervisors import hypervisor
from ..settings import get_settings


def candidate_hosts(template: Template) -> list[Host]:
    """Hosts that accept new VMs and hold the template's image."""
    return db.session.execute(
        db.select(Host).join(ImageLocation, ImageLocation.host_id == Host.id)
        .where(ImageLocation.image_id == template.image_id, ImageLocation.present.is_(True),
               Host.accepts_vms.is_(True)).order_by(Host.name)).scalars().all()


def choose_host(template: Template) -> Host:
    """The online candidate host with the most free memory (hosts asked in parallel)."""
    hosts = candidate_hosts(template)
    if not hosts:
        raise Unavailable(f"No host accepting new VMs holds the image {template.image.name}.")
    loads = on_each([hypervisor(s) for s in hosts], lambda h: h.load(cpu=False))
    ranked = sorted(((load.memory_free_mib, -i, s) for i, s in enumerate(hosts)
                     if not isinstance(load := loads[s.uri], VirtError)),
                    key=lambda t: t[:2], reverse=True)
    if not ranked:
        raise Unavailable("Every host that could take this VM is offline: "
                          + "; ".join(f"{s.name}: {loads[s.uri]}" for s in hosts))
    return ranked[0][2]


def check_host_for(template: Template, host: Host) -> None:
    """Refuse a host the administrator chose that lacks the template's image."""
    if host.id not in {loc.host_id for loc in template.image.locations if loc.present}:
        raise FieldError(f"The image {template.image.name} is not on {host.name}.",
                         "host_id")


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
        raise FieldError(f"Cannot resolve {address} to choose where VNC listens; set the "
                         "VNC listen address in Settings.") from None
