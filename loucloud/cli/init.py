"""manage.py init: the administrator and the local host."""
import getpass
import os

import click
from flask import current_app
from flask.cli import with_appcontext

from ..services import ServiceError
from ..services import hosts as host_service
from ..services import networks as network_service
from ..services.settings import get_settings
from ..services import users as user_service
from .common import audited, fail

DEMO_URI = "test:///default"
SESSION_URI = "qemu:///session"


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
    """The local libvirtd as host "local": the system daemon, else (as an ordinary
    user) the user's own session daemon, else libvirt's test driver as a simulated demo
    host. Then its default network started, so that new VMs get a working NIC."""
    local_uri = current_app.config["LOCAL_HOST_URI"]
    hosts = host_service.all_hosts()
    known = next((h for h in hosts if h.uri in (local_uri, SESSION_URI)), None)
    if known is not None:
        click.echo(f"Local host: {known.uri} (registered)")
        _start_default_network(known)
        return
    candidates = [local_uri]
    if os.geteuid() != 0 and local_uri == "qemu:///system":
        candidates.append(SESSION_URI)
    problems = []
    for uri in candidates:
        try:
            host = host_service.add_host("local", uri)
        except ServiceError as exc:
            problems.append(f"{uri}: {exc}")
            continue
        if uri == SESSION_URI:
            click.echo(f"qemu:///system is not open to {getpass.getuser()}; registered your "
                       f"own {SESSION_URI} instead: real VMs running as "
                       f"{getpass.getuser()}, with user-mode networking (outgoing only).")
        click.echo(f"Local host registered: {host.name} ({host.uri}, {host.hostname}, "
                   f"{host.cpus} CPUs, {host.memory_mib} MiB)")
        _start_default_network(host)
        return
    if hosts:
        click.echo(f"Local host: {'; '.join(problems)}; keeping the {len(hosts)} registered "
                   "host(s).")
        return
    click.echo(f"Local host: {'; '.join(problems)}.")
    host_service.add_host("demo", DEMO_URI)
    click.echo(f"Registered {DEMO_URI} as 'demo': a SIMULATED host (libvirt's test "
               "driver). Nothing really runs there.")


def _start_default_network(host) -> None:
    """Settings' network on the local host, started and made to start with it when it
    exists but is inactive (a fresh Debian: libvirt defines 'default' but leaves it off)."""
    if host.uri == SESSION_URI or host.is_demo:
        return
    name = get_settings().network
    found = next((hn for hn in network_service.list_host_networks() if hn.host.id == host.id),
                 None)
    if found is None or found.error:
        click.echo(f"Network: {host.name} did not answer ({found.error if found else '?'})")
        return
    net = next((n for n in found.networks if n.name == name), None)
    if net is None:
        click.echo(f"Network: {host.name} has no network {name}: VMs will have no network "
                   "card until one is made (Networks page, or manage.py networks create).")
        return
    changes = []
    try:
        if not net.active:
            network_service.network_action(host, name, "start")
            changes.append("started it")
        if not net.autostart:
            network_service.network_action(host, name, "autostart")
            changes.append("made it start with the host")
    except ServiceError as exc:
        click.echo(f"Network: {name} on {host.name} could not be started: {exc}. VMs will "
                   "have no network card (install dnsmasq-base and iptables?).")
        return
    if changes:
        click.echo(f"Network: libvirt's network {name} on {host.name} was inactive; "
                   f"{' and '.join(changes)}, so new VMs get a working network card.")
    else:
        click.echo(f"Network: {name} on {host.name} is active.")
