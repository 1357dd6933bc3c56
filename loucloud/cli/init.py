"""manage.py init: the administrator and the local host."""
import os

import click
from flask import current_app
from flask.cli import with_appcontext

from ..services import ServiceError
from ..services import hosts as host_service
from ..services import users as user_service
from .common import audited, fail

DEMO_URI = "test:///default"


@click.command("init")
@click.option("--local-host/--no-local-host", default=True,
              help="Register this machine's libvirtd (or a demo host) if needed.")
@with_appcontext
@audited("init", None)
def init_command(local_host: bool) -> None:
    """Create the administrator and register a local host. Safe to run again."""
    password = os.environ.get("LOUCLOUD_ADMIN_PASSWORD") or None
    try:
        admin, created, generated = user_service.create_admin(password)
    except ServiceError as exc:
        fail(f"LOUCLOUD_ADMIN_PASSWORD: {exc}")
    if created and not generated:
        click.echo(f"Administrator created: {admin.username}, with the password in "
                   "LOUCLOUD_ADMIN_PASSWORD")
    elif generated:
        click.echo("=" * 64)
        click.echo(f"  Administrator created. User name: {admin.username}")
        click.echo(f"  Password: {generated}")
        click.echo("  (shown only this once: write it down, then change it in Profile)")
        click.echo("=" * 64)
    else:
        click.echo(f"Administrator: {admin.username} (exists)")
    if local_host:
        _register_local_host()


def _register_local_host() -> None:
    local_uri = current_app.config["LOCAL_HOST_URI"]
    hosts = host_service.all_hosts()
    if any(s.uri == local_uri for s in hosts):
        click.echo(f"Local host: {local_uri} (registered)")
        return
    try:
        host = host_service.add_host("local", local_uri)
    except ServiceError as exc:
        if hosts:
            click.echo(f"Local host: {exc}; keeping the {len(hosts)} registered host(s).")
            return
        click.echo(f"Local host: {exc}.")
        host = host_service.add_host("demo", DEMO_URI)
        click.echo(f"Registered {DEMO_URI} as 'demo': a SIMULATED host (libvirt's test "
                   "driver). Nothing really runs there.")
        return
    click.echo(f"Local host registered: {host.name} ({host.uri}, {host.hostname}, "
               f"{host.cpus} CPUs, {host.memory_mib} MiB)")
