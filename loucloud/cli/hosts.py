"""manage.py hosts add|list|remove"""
import click
from flask.cli import AppGroup
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..services import hosts as host_service
from .common import audited, delete_command, list_command, service

group = AppGroup("hosts", help="Hypervisor hosts.")


@group.command("add")
@click.argument("name")
@click.argument("uri")
@audited("hosts.add")
def add(name: str, uri: str) -> None:
    """Add a host by NAME and libvirt URI."""
    host = service(lambda: host_service.add_host(name, uri))
    click.echo(_("added %(name)s: %(hostname)s, %(cpus)s CPUs, %(memory)s MiB, "
                 "%(hypervisor)s %(version)s", name=host.name, hostname=host.hostname,
                 cpus=host.cpus, memory=host.memory_mib, hypervisor=host.hypervisor,
                 version=host.hypervisor_version))


list_command(group, lambda: [v.as_dict() for v in host_service.list_hosts()],
             ["id", "name", "uri", "online", "cpus", "memory_mib", "vms", "accepts_vms"],
             help="List hosts with their live state.")
delete_command(group, "remove", host_service.host_by_name, host_service.remove_host,
               _l("removed %(name)s"),
               help="Remove the host NAME from the pool (refused while it holds VMs).")
