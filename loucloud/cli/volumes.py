"""manage.py volumes list|delete-orphan (issue 14): every volume of LouCloud's pool on
every host, whose it is, and the orphans."""
import click
from flask.cli import AppGroup
from flask_babel import gettext as _

from ..services import hosts as host_service
from ..services import volumes
from .common import audited, echo_rows, service

group = AppGroup("volumes", help="Volumes of LouCloud's storage pool on the hosts.")


@group.command("list")
@click.option("--orphans", is_flag=True, help="Only the volumes no record owns.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(orphans: bool, as_json: bool) -> None:
    """List every volume of LouCloud's pool on every host, with what it belongs to."""
    report = volumes.list_volumes()
    rows = [r.as_dict() for r in (report.orphans if orphans else report.rows)]
    for row in rows:
        row["owner"] = row["owner"] or "ORPHAN"
    echo_rows(rows, as_json, ["host", "name", "format", "capacity", "allocation", "owner"])
    for host, why in report.problems.items():
        click.echo(_("warning: %(host)s not listed: %(why)s", host=host, why=why), err=True)


@group.command("delete-orphan")
@click.argument("host")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@audited("volumes.delete_orphan")
def delete_orphan(host: str, name: str, yes: bool) -> None:
    """Delete the orphan volume NAME from HOST (refused when anything owns or uses it)."""
    found = service(lambda: host_service.host_by_name(host))
    if not yes:
        click.confirm(_("Delete the volume %(name)s from %(host)s and its data for good?",
                        name=name, host=host), abort=True)
    click.echo(service(lambda: volumes.delete_orphan(found, name)))
