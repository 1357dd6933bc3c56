"""Placement: which host takes a new VM, and where its screen listens there."""
from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from ...extensions import db
from ...models import ImageLocation, Server, Template
from ...virt import VirtError
from ...virt.driver import on_each
from .. import FieldError, Unavailable
from ..hypervisors import hypervisor
from ..settings import get_settings


def candidate_servers(template: Template) -> list[Server]:
    """Hosts that accept new VMs and hold the template's image."""
    return db.session.execute(
        db.select(Server).join(ImageLocation, ImageLocation.server_id == Server.id)
        .where(ImageLocation.image_id == template.image_id, ImageLocation.present.is_(True),
               Server.accepts_vms.is_(True)).order_by(Server.name)).scalars().all()


def choose_server(template: Template) -> Server:
    """The online candidate host with the most free memory (hosts asked in parallel)."""
    servers = candidate_servers(template)
    if not servers:
        raise Unavailable(f"No host accepting new VMs holds the image {template.image.name}.")
    loads = on_each([hypervisor(s) for s in servers], lambda h: h.load(cpu=False))
    ranked = sorted(((load.memory_free_mib, -i, s) for i, s in enumerate(servers)
                     if not isinstance(load := loads[s.uri], VirtError)),
                    key=lambda t: t[:2], reverse=True)
    if not ranked:
        raise Unavailable("Every host that could take this VM is offline: "
                          + "; ".join(f"{s.name}: {loads[s.uri]}" for s in servers))
    return ranked[0][2]


def check_server_for(template: Template, server: Server) -> None:
    """Refuse a host the administrator chose that lacks the template's image."""
    if server.id not in {loc.server_id for loc in template.image.locations if loc.present}:
        raise FieldError(f"The image {template.image.name} is not on {server.name}.",
                         "server_id")


def vnc_listen_for(server: Server) -> str:
    """The address the VM's VNC server listens on: the Settings policy, else loopback
    for a local host and the host's own address for a remote one. Never 0.0.0.0."""
    policy = get_settings().vnc_listen
    if policy != "auto":
        return policy
    address = urlsplit(server.uri).hostname
    if not address or server.is_demo:
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
