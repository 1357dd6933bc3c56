"""The command line (python manage.py ...), over the same services as the pages."""
from __future__ import annotations

import functools
import getpass
import json
import os
import sys

import click
from flask import current_app
from flask.cli import AppGroup, FlaskGroup, ScriptInfo, pass_script_info, with_appcontext

from .extensions import db
from .models import VM, Image, Server, Template, User
from .services import ServiceError
from .services import images as image_service
from .services import servers as server_service
from .services import users as user_service
from .services import vms as vm_service
from .services import vmtemplates as template_service

DEMO_URI = "test:///default"


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def audited(action: str, target_param: str | None = "name"):
    """Record a state-changing command in the audit log: ok when it returns, refused
    when it fails (exit 1). The target is the value of one of its arguments."""
    def decorate(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            from .services import audit

            target = str(kwargs.get(target_param, "")) if target_param else ""
            who = f"cli:{getpass.getuser()}"
            try:
                result = fn(*args, **kwargs)
            except SystemExit as exc:
                if exc.code not in (0, None):
                    db.session.rollback()
                    audit.record(action, audit.REFUSED, target=target, username=who,
                                 address="cli")
                raise
            audit.record(action, audit.OK, target=target, username=who, address="cli")
            return result
        return run
    return decorate


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
@audited("init", None)
def init_command(local_host: bool) -> None:
    """Create the administrator and register a local host. Safe to run again."""
    password = os.environ.get("LOUCLOUD_ADMIN_PASSWORD") or None
    try:
        admin, created, generated = user_service.create_admin(password)
    except ServiceError as exc:
        _fail(f"LOUCLOUD_ADMIN_PASSWORD: {exc}")
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


@click.command("sampler")
@click.option("--once", is_flag=True, help="One cycle, then exit (for cron or a test).")
@with_appcontext
def sampler_command(once: bool) -> None:
    """Sample every host and VM for the charts, every sample_interval_seconds."""
    import logging
    import signal
    import threading

    from .services import sampler

    logging.getLogger("loucloud.services.sampler").setLevel(logging.INFO)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        sampler.run(stop, once=once)
    except KeyboardInterrupt:
        pass


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--console/--no-console", default=True, show_default=True,
              help="Start the console proxy beside the web server.")
@pass_script_info
def serve_command(info: ScriptInfo, host: str, port: int, console: bool) -> None:
    """Serve LouCloud with the embedded threaded server (no debugger, no reloader),
    beside the sampler and the console proxy on its own port."""
    import subprocess

    from werkzeug.serving import run_simple

    app = info.load_app()
    helpers = [subprocess.Popen([sys.executable, os.path.abspath(sys.argv[0]), "sampler"])]
    if console:
        helpers.append(subprocess.Popen([sys.executable, os.path.abspath(sys.argv[0]),
                                         "console-proxy"]))
    click.echo(f"LouCloud is on http://{host}:{port}/  (Ctrl-C stops it)")
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)
    finally:
        for helper in helpers:
            helper.terminate()
            helper.wait(timeout=10)


@click.command("console-proxy")
@click.option("--host", default=None, help="Address to listen on [CONSOLE_PROXY_HOST, "
                                           "default 127.0.0.1].")
@click.option("--port", default=None, type=int, help="[CONSOLE_PROXY_PORT, default 6080]")
@pass_script_info
def console_proxy_command(info: ScriptInfo, host: str | None, port: int | None) -> None:
    """Run the console proxy (websockify with LouCloud's one-time tokens)."""
    import logging

    from .console.proxy import make_server

    logging.getLogger("loucloud.console").setLevel(logging.INFO)
    app = info.load_app()
    host = host or app.config["CONSOLE_PROXY_HOST"]
    port = port or app.config["CONSOLE_PROXY_PORT"]
    server = make_server(app, host, port)
    click.echo(f"Console proxy on {host}:{port} for {', '.join(sorted(server.gate.origins))}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


hosts_cli = AppGroup("hosts", help="Hypervisor hosts.")


@hosts_cli.command("add")
@click.argument("name")
@click.argument("uri")
@audited("hosts.add")
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
@audited("hosts.remove")
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
@audited("users.create", "username")
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


images_cli = AppGroup("images", help="Disk images on the hosts.")


def _one(model, name: str, what: str):
    row = db.session.execute(db.select(model).where(model.name == name)).scalar()
    if row is None:
        _fail(f"no {what} named {name}")
    return row


@images_cli.command("add")
@click.argument("name")
@click.argument("path")
@click.option("--os", "os_type", type=click.Choice(["linux", "windows"]), default="linux",
              show_default=True)
@audited("images.add")
def images_add(name: str, path: str, os_type: str) -> None:
    """Record the image file PATH (already on the hosts) as NAME."""
    try:
        image = image_service.add_image(name, path, os_type)
    except ServiceError as exc:
        _fail(str(exc))
    click.echo(f"added {image.name}: {image.format}, {image.virtual_size} bytes, on "
               f"{len(image_service.servers_with_image(image))} host(s)")


@images_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def images_list(as_json: bool) -> None:
    """List images and the hosts they are on."""
    rows = []
    for image in db.session.execute(db.select(Image).order_by(Image.name)).scalars():
        rows.append({"id": image.id, "name": image.name, "path": image.path,
                     "format": image.format, "virtual_size": image.virtual_size,
                     "os_type": image.os_type,
                     "hosts": sorted(loc.server.name for loc in image.locations if loc.present)})
    _echo_rows(rows, as_json, ["id", "name", "format", "virtual_size", "os_type", "path"])


@images_cli.command("delete")
@click.argument("name")
@audited("images.delete")
def images_delete(name: str) -> None:
    """Forget the image NAME (its file stays on the hosts)."""
    try:
        image_service.delete_image(_one(Image, name, "image"))
    except ServiceError as exc:
        _fail(str(exc))
    click.echo(f"removed {name}")


templates_cli = AppGroup("templates", help="VM templates (sizes).")


@templates_cli.command("add")
@click.argument("name")
@click.option("--image", "image_name", required=True)
@click.option("--vcpus", type=int, required=True)
@click.option("--memory", "memory_mib", type=int, required=True, help="MiB")
@click.option("--disk", "disk_gib", type=int, required=True, help="GiB")
@click.option("--notes", default="")
@audited("templates.add")
def templates_add(name, image_name, vcpus, memory_mib, disk_gib, notes) -> None:
    """Create the template NAME."""
    image = _one(Image, image_name, "image")
    try:
        template = template_service.create_template(
            name, template_service.Sizes(vcpus, memory_mib, disk_gib), image, notes)
    except ServiceError as exc:
        _fail(str(exc))
    click.echo(f"added {template.name}")


@templates_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def templates_list(as_json: bool) -> None:
    """List templates."""
    rows = [{"id": t.id, "name": t.name, "image": t.image.name, "vcpus": t.vcpus,
             "memory_mib": t.memory_mib, "disk_gib": t.disk_gib}
            for t in db.session.execute(db.select(Template).order_by(Template.name)).scalars()]
    _echo_rows(rows, as_json, ["id", "name", "image", "vcpus", "memory_mib", "disk_gib"])


@templates_cli.command("delete")
@click.argument("name")
@audited("templates.delete")
def templates_delete(name: str) -> None:
    """Delete the template NAME (refused while VMs use it)."""
    try:
        template_service.delete_template(_one(Template, name, "template"))
    except ServiceError as exc:
        _fail(str(exc))
    click.echo(f"deleted {name}")


vms_cli = AppGroup("vms", help="Virtual machines.")


def _owner(username: str) -> User:
    user = db.session.execute(db.select(User).where(User.username == username)).scalar()
    if user is None:
        _fail(f"no user named {username}")
    return user


def _vm(owner: str, name: str) -> VM:
    vm = db.session.execute(db.select(VM).join(User, VM.owner_id == User.id).where(
        User.username == owner, VM.name == name)).scalar()
    if vm is None:
        _fail(f"{owner} has no VM named {name}")
    return vm


@vms_cli.command("create")
@click.argument("name")
@click.option("--owner", required=True, help="User name of the owner.")
@click.option("--template", "template_name", required=True)
@click.option("--host", "host_name", default=None, help="Host (default: placement).")
@click.option("--no-start", is_flag=True, help="Leave it shut off.")
@audited("vms.create")
def vms_create(name, owner, template_name, host_name, no_start) -> None:
    """Create the VM NAME for --owner from --template."""
    user = _owner(owner)
    template = _one(Template, template_name, "template")
    server = _one(Server, host_name, "host") if host_name else None
    try:
        vm = vm_service.create_vm(user, name, template, server, start=not no_start)
    except ServiceError as exc:
        _fail(str(exc))
    click.echo(f"created {vm.name} on {vm.server.name}")


@vms_cli.command("list")
@click.option("--owner", default=None, help="Only this user's VMs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def vms_list(owner: str | None, as_json: bool) -> None:
    """List VMs with libvirt's live state."""
    admin = db.session.execute(db.select(User).where(User.is_admin.is_(True))).scalar()
    viewer = _owner(owner) if owner else admin
    if viewer is None:
        _fail("no administrator yet: run init")
    page = vm_service.list_vms(viewer, per_page=1_000_000)
    rows = [v.as_dict() for v in page.items]
    _echo_rows(rows, as_json, ["id", "name", "owner", "host", "state", "vcpus", "memory_mib"])


def _vm_action(action: str):
    @click.argument("name")
    @click.option("--owner", required=True, help="User name of the owner.")
    @audited(f"vms.{action}")
    def command(name: str, owner: str) -> None:
        try:
            click.echo(vm_service.act_on_vm(_vm(owner, name), action))
        except ServiceError as exc:
            _fail(str(exc))
    command.__doc__ = f"{vm_service.LABELS[action]} the VM NAME of --owner."
    return command


for _action in vm_service.ACTIONS:
    vms_cli.command(_action)(_vm_action(_action))


@vms_cli.command("delete")
@click.argument("name")
@click.option("--owner", required=True, help="User name of the owner.")
@audited("vms.delete")
def vms_delete(name: str, owner: str) -> None:
    """Delete the VM NAME of --owner with its disk."""
    try:
        click.echo(vm_service.delete_vm(_vm(owner, name)))
    except ServiceError as exc:
        _fail(str(exc))


def register(app) -> None:
    app.cli.add_command(init_command)
    app.cli.add_command(serve_command)
    app.cli.add_command(console_proxy_command)
    app.cli.add_command(sampler_command)
    for group in (hosts_cli, users_cli, images_cli, templates_cli, vms_cli):
        app.cli.add_command(group)


def main() -> None:
    import logging

    from . import create_app

    # The commands print what matters; the log shows only problems.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    FlaskGroup(create_app=lambda: create_app(), help="LouCloud command line.")(
        prog_name="manage.py")
