"""manage.py init: the administrator and the local host."""
import getpass
import os

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import gettext as _

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
        fail(_("LOUCLOUD_ADMIN_PASSWORD: %(error)s", error=exc))
    if created and not generated:
        click.echo(_("Administrator created: %(name)s, with the password in "
                     "LOUCLOUD_ADMIN_PASSWORD", name=admin.username))
    elif generated:
        click.echo("=" * 64)
        click.echo("  " + _("Administrator created. User name: %(name)s",
                            name=admin.username))
        click.echo("  " + _("Password: %(password)s", password=generated))
        click.echo("  " + _("(shown only this once: write it down, then change it in "
                            "Profile)"))
        click.echo("=" * 64)
    else:
        click.echo(_("Administrator: %(name)s (exists)", name=admin.username))
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
        click.echo(_("Local host: %(uri)s (registered)", uri=known.uri))
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
            click.echo(_("qemu:///system is not open to %(user)s; registered your own "
                         "%(uri)s instead: real VMs running as %(user)s, with user-mode "
                         "networking (outgoing only).", user=getpass.getuser(),
                         uri=SESSION_URI))
        click.echo(_("Local host registered: %(name)s (%(uri)s, %(hostname)s, %(cpus)s "
                     "CPUs, %(memory)s MiB)", name=host.name, uri=host.uri,
                     hostname=host.hostname, cpus=host.cpus, memory=host.memory_mib))
        _start_default_network(host)
        return
    if hosts:
        click.echo(_("Local host: %(problems)s; keeping the %(count)s registered host(s).",
                     problems="; ".join(problems), count=len(hosts)))
        return
    click.echo(_("Local host: %(problems)s.", problems="; ".join(problems)))
    host_service.add_host("demo", DEMO_URI)
    click.echo(_("Registered %(uri)s as 'demo': a SIMULATED host (libvirt's test "
                 "driver). Nothing really runs there.", uri=DEMO_URI))


def _start_default_network(host) -> None:
    """Settings' network on the local host, started and made to start with it when it
    exists but is inactive (a fresh Debian: libvirt defines 'default' but leaves it off)."""
    if host.uri == SESSION_URI or host.is_demo:
        return
    name = get_settings().network
    found = next((hn for hn in network_service.list_host_networks() if hn.host.id == host.id),
                 None)
    if found is None or found.error:
        click.echo(_("Network: %(host)s did not answer (%(error)s)", host=host.name,
                     error=found.error if found else "?"))
        return
    net = next((n for n in found.networks if n.name == name), None)
    if net is None:
        click.echo(_("Network: %(host)s has no network %(name)s: VMs will have no network "
                     "card until one is made (Networks page, or manage.py networks "
                     "create).", host=host.name, name=name))
        return
    start, autostart = not net.active, not net.autostart
    try:
        if start:
            network_service.network_action(host, name, "start")
        if autostart:
            network_service.network_action(host, name, "autostart")
    except ServiceError as exc:
        click.echo(_("Network: %(name)s on %(host)s could not be started: %(error)s. VMs "
                     "will have no network card (install dnsmasq-base and iptables?).",
                     name=name, host=host.name, error=exc))
        return
    if start or autostart:
        changes = _("started it and made it start with the host") if start and autostart \
            else _("started it") if start else _("made it start with the host")
        click.echo(_("Network: libvirt's network %(name)s on %(host)s was inactive; "
                     "%(changes)s, so new VMs get a working network card.", name=name,
                     host=host.name, changes=changes))
    else:
        click.echo(_("Network: %(name)s on %(host)s is active.", name=name, host=host.name))
