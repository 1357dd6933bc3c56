"""manage.py users create|list|language"""
import os
import sys

import click
from flask.cli import AppGroup
from flask_babel import gettext as _

from ..i18n import LANGUAGES
from ..services import users as user_service
from .common import audited, list_command, service

group = AppGroup("users", help="User accounts.")


@group.command("create")
@click.argument("username")
@click.option("--full-name", default="")
@click.option("--email", default=None)
@click.option("--password-env", default="LOUCLOUD_USER_PASSWORD", show_default=True,
              help="Environment variable holding the password (never an argument: "
                   "arguments are visible to other users of the machine).")
@audited("users.create", "username")
def create(username: str, full_name: str, email: str | None, password_env: str) -> None:
    """Create an ordinary user USERNAME with the default quota. Login names use ASCII
    letters, digits, '.', '_' or '-'; the full name may use any language."""
    password = os.environ.get(password_env)
    if not password:
        if not sys.stdin.isatty():
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = service(lambda: user_service.create_user(username, password, full_name, email))
    click.echo(_("created %(name)s", name=user.username))


@group.command("language")
@click.argument("username")
@click.argument("code", type=click.Choice([*LANGUAGES, "browser"]))
@audited("users.language", "username")
def language(username: str, code: str) -> None:
    """The language of USERNAME's pages and messages (CODE: en, zh_CN, or browser for
    his browser's). The command line's own language: $LOUCLOUD_LANG, else $LANG."""
    user = service(lambda: user_service.user_by_name(username))
    click.echo(service(lambda: user_service.set_language(
        user, None if code == "browser" else code)))


def _rows() -> list[dict]:
    rows = []
    for user in user_service.all_users():
        usage = user_service.quota_usage(user)
        rows.append({"id": user.id, "username": user.username, "role": user.role,
                     "active": user.active, "vms": usage.used.vms, "max_vms": user.max_vms,
                     "vcpus": usage.used.vcpus, "max_vcpus": user.max_vcpus,
                     "memory_mib": usage.used.memory_mib, "max_memory_mib": user.max_memory_mib,
                     "disk_gib": usage.used.disk_gib, "max_disk_gib": user.max_disk_gib})
    return rows


list_command(group, _rows, ["id", "username", "role", "active", "vms", "max_vms"],
             help="List users with their quota use.")
