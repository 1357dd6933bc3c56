"""manage.py hosts add|list|remove"""
import click
from flask.cli import AppGroup

from ..services import servers as server_service
from .common import audited, delete_command, list_command, service

group = AppGroup("hosts", help="Hypervisor hosts.")


@group.command("add")
@click.argument("name")
@click.argument("uri")
@audited("hosts.add")
def add(name: str, uri: str) -> None:
    """Add a host by NAME and libvirt URI."""
    server = service(lambda: server_service.add_server(name, uri))
    click.echo(f"added {server.name}: {server.hostname}, {server.cpus} CPUs, "
               f"{server.memory_mib} MiB, {server.hypervisor} {server.hypervisor_version}")


list_command(group, lambda: [v.as_dict() for v in server_service.list_servers()],
             ["id", "name", "uri", "online", "cpus", "memory_mib", "vms", "accepts_vms"],
             help="List hosts with their live state.")
delete_command(group, "remove", server_service.server_by_name, server_service.remove_server,
               "removed {name}", help="Remove the host NAME from the pool (refused while "
                                      "it holds VMs).")
