"""manage.py networks list|create|start|stop|autostart|no-autostart"""
import click
from flask.cli import AppGroup
from flask_babel import gettext as _

from ..services import hosts as host_service
from ..services import networks as network_service
from .common import audited, echo_rows, fail, service

group = AppGroup("networks", help="Every host's libvirt networks.")


def _rows() -> list[dict]:
    rows = []
    for hn in network_service.list_host_networks():
        if hn.error:
            rows.append({"host": hn.host.name, "name": "", "error": hn.error})
        for net in hn.networks:
            v4 = net.desc.ipv4()
            rows.append({"host": hn.host.name, "name": net.name,
                         "mode": network_service.mode_of(net.desc), "active": net.active,
                         "autostart": net.autostart, "managed": net.desc.managed,
                         "subnet": str(v4.network) if v4 else "",
                         "dhcp": f"{v4.dhcp_start}-{v4.dhcp_end}" if v4 and v4.dhcp_start
                         else "", "in_use": hn.in_use.get(net.name, 0)})
    return rows


@group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(as_json: bool) -> None:
    """List every host's networks."""
    echo_rows(_rows(), as_json, ["host", "name", "mode", "active", "autostart", "subnet",
                                 "dhcp", "in_use"])


@group.command("create")
@click.argument("name")
@click.argument("subnet")
@click.option("--host", "host_names", multiple=True, help="Only on this host (repeat); "
              "default: every host.")
@audited("networks.create")
def create(name: str, subnet: str, host_names: tuple[str, ...]) -> None:
    """Make the NAT network NAME on SUBNET (IPv4 CIDR) on the hosts."""
    hosts = [service(lambda n=n: host_service.host_by_name(n)) for n in host_names] \
        or host_service.all_hosts()
    results = service(lambda: network_service.create_network(name, subnet, hosts))
    failed = [f"{h.name}: {error}" for h, error in results if error]
    for host, error in results:
        click.echo(_("%(host)s: not made: %(error)s", host=host.name, error=error) if error
                   else _("%(host)s: made and started", host=host.name))
    if failed:
        fail(_("%(name)s was not made on every host", name=name))


def _action(action: str):
    @click.argument("name")
    @click.option("--host", "host_name", required=True, help="The host.")
    @audited(f"networks.{action}")
    def command(name: str, host_name: str) -> None:
        click.echo(service(lambda: network_service.network_action(
            host_service.host_by_name(host_name), name, action)))
    command.__doc__ = {"start": "Start the network NAME on --host.",
                       "stop": "Stop the network NAME on --host.",
                       "autostart": "Make NAME start with --host.",
                       "no-autostart": "Make NAME no longer start with --host."}[action]
    return command


for _name in network_service.ACTIONS:
    group.command(_name)(_action(_name))
