"""manage.py keys add|list|delete — users' SSH public keys"""
import sys

import click
from flask.cli import AppGroup
from flask_babel import gettext as _

from ..services import keys as key_service
from ..services import users as user_service
from .common import audited, echo_rows, fail, service

group = AppGroup("keys", help="Users' SSH public keys (given to their new VMs).")


@group.command("add")
@click.argument("username")
@click.option("--name", default="", help="A name for the key (default: its comment).")
@click.option("--file", "key_file", type=click.File("r"), default=None,
              help="The .pub file (default: read the key from standard input).")
@audited("keys.add", "username")
def add(username: str, name: str, key_file) -> None:
    """Add an SSH public key to USERNAME."""
    line = (key_file or sys.stdin).read(16384).strip()
    user = service(lambda: user_service.user_by_name(username))
    key = service(lambda: key_service.add_key(user, name, line))
    click.echo(_("added %(name)s (%(fingerprint)s) for %(user)s", name=key.name,
                 fingerprint=key.fingerprint, user=username))


@group.command("list")
@click.argument("username")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(username: str, as_json: bool) -> None:
    """List USERNAME's keys."""
    user = service(lambda: user_service.user_by_name(username))
    echo_rows([{"id": k.id, "name": k.name, "fingerprint": k.fingerprint,
                "added": k.created_at} for k in key_service.keys_of(user)],
              as_json, ["id", "name", "fingerprint", "added"])


@group.command("delete")
@click.argument("username")
@click.argument("name")
@audited("keys.delete", "name")
def delete(username: str, name: str) -> None:
    """Delete USERNAME's key called NAME."""
    user = service(lambda: user_service.user_by_name(username))
    matches = [k for k in key_service.keys_of(user) if k.name == name]
    if not matches:
        fail(_("%(user)s has no key named %(name)s", user=username, name=name))
    service(lambda: key_service.delete_key(matches[0]))
    click.echo(_("deleted %(name)s", name=name))
