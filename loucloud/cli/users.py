"""manage.py users create|list"""
import os
import sys

import click
from flask.cli import AppGroup

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
    click.echo(f"created {user.username}")


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
