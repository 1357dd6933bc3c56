"""The command line (python manage.py ...), over the same services as the pages."""
from __future__ import annotations

import json
import os
import sys

import click
from flask import current_app
from flask.cli import AppGroup, FlaskGroup, ScriptInfo, pass_script_info, with_appcontext

from .extensions import db
from .models import Server, User
from .services import ServiceError
from .services import servers as server_service
from .services import users as user_service

DEMO_URI = "test:///default"


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _echo_rows(rows: list[dict], as_json: bool, columns: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    widths = {c: max([len(c)] + [len(str(r.get(c, ""))) for r in rows]) for c in columns}
    click.echo("  ".join(c.upper().ljust(widths[c]) for c in columns))
    for r in rows:
        click.echo("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns))


@click.command("init")
@click.option("--local-host/--no-local-host", default=True,
              help="Register this machine's libvirtd (or a demo host) if needed.")
@with_appcontext
def init_command(local_host: bool) -> None:
    """Create the administrator and register a local host. Safe to run again."""
    password = os.environ.get("LOUCLOUD_ADMIN_PASSWORD") or None
    try:
        admin, generated = user_service.create_admin(password)
    except ServiceError as exc:
        _fail(f"LOUCLOUD_ADMIN_PASSWORD: {exc}")
    if generated:
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
    servers = db.session.execute(db.select(Server)).scalars().all()
    if any(s.uri == local_uri for s in servers):
        click.echo(f"Local host: {local_uri} (registered)")
        return
    try:
        server = server_service.add_server("local", local_uri)
    except ServiceError as exc:
        db.session.rollback()
        if servers:
            click.echo(f"Local host: {exc}; keeping the {len(servers)} registered host(s).")
            return
        click.echo(f"Local host: {exc}.")
        server = server_service.add_server("demo", DEMO_URI)
        click.echo(f"Registered {DEMO_URI} as 'demo': a SIMULATED host (libvirt's test "
                   "driver). Nothing really runs there.")
        return
    click.echo(f"Local host registered: {server.name} ({server.uri}, {server.hostname}, "
               f"{server.cpus} CPUs, {server.memory_mib} MiB)")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=int)
@pass_script_info
def serve_command(info: ScriptInfo, host: str, port: int) -> None:
    """Serve LouCloud with the embedded threaded server (no debugger, no reloader)."""
    from werkzeug.serving import run_simple

    app = info.load_app()
    click.echo(f"LouCloud is on http://{host}:{port}/  (Ctrl-C stops it)")
    run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)


hosts_cli = AppGroup("hosts", help="Hypervisor hosts.")


@hosts_cli.command("add")
@click.argument("name")
@click.argument("uri")
def hosts_add(name: str, uri: str) -> None:
    """Add a host by NAME and libvirt URI."""
    try:
        server = server_service.add_server(name, uri)
    except ServiceError as exc:
        _fail(str(exc))
    click.echo(f"added {server.name}: {server.hostname}, {server.cpus} CPUs, "
               f"{server.memory_mib} MiB, {server.hypervisor} {server.hypervisor_version}")


@hosts_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def hosts_list(as_json: bool) -> None:
    """List hosts with their live state."""
    rows = [v.as_dict() for v in server_service.list_servers()]
    _echo_rows(rows, as_json, ["id", "name", "uri", "online", "cpus", "memory_mib", "vms",
                               "accepts_vms"])


@hosts_cli.command("remove")
@click.argument("name")
def hosts_remove(name: str) -> None:
    """Remove the host NAME from the pool (refused while it holds VMs)."""
    server = db.session.execute(db.select(Server).where(Server.name == name)).scalar()
    if server is None:
        _fail(f"no host named {name}")
    try:
        server_service.remove_server(server)
    except ServiceError as exc:
        _fail(str(exc))
    click.echo(f"removed {name}")


users_cli = AppGroup("users", help="User accounts.")


@users_cli.command("create")
@click.argument("username")
@click.option("--full-name", default="")
@click.option("--email", default=None)
@click.option("--password-env", default="LOUCLOUD_USER_PASSWORD", show_default=True,
              help="Environment variable holding the password (never an argument: "
                   "arguments are visible to other users of the machine).")
def users_create(username: str, full_name: str, email: str | None, password_env: str) -> None:
    """Create an ordinary user with the default quota."""
    password = os.environ.get(password_env)
    if not password:
        if not sys.stdin.isatty():
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = user_service.create_user(username, password, full_name, email)
    except ServiceError as exc:
        _fail(str(exc))
    click.echo(f"created {user.username}")


@users_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def users_list(as_json: bool) -> None:
    """List users with their quota use."""
    rows = []
    for user in db.session.execute(db.select(User).order_by(User.username)).scalars():
        usage = user_service.quota_usage(user)
        rows.append({"id": user.id, "username": user.username, "role": user.role,
                     "active": user.active, "vms": usage.used.vms, "max_vms": user.max_vms,
                     "vcpus": usage.used.vcpus, "max_vcpus": user.max_vcpus,
                     "memory_mib": usage.used.memory_mib, "max_memory_mib": user.max_memory_mib,
                     "disk_gib": usage.used.disk_gib, "max_disk_gib": user.max_disk_gib})
    _echo_rows(rows, as_json, ["id", "username", "role", "active", "vms", "max_vms"])


def register(app) -> None:
    app.cli.add_command(init_command)
    app.cli.add_command(serve_command)
    app.cli.add_command(hosts_cli)
    app.cli.add_command(users_cli)


def main() -> None:
    import logging

    from . import create_app

    # The commands print what matters; the log shows only problems.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    FlaskGroup(create_app=lambda: create_app(), help="LouCloud command line.")(
        prog_name="manage.py")
