"""The command line (python manage.py ...), over the same services as the pages: a
module per command group; ``manage.py`` is the entry point."""
from __future__ import annotations

from . import (bootjobs, hosts, images, keys, networks, tasks, templates, tokens, users,
               vms, volumes)
# Modules that add their commands to the vms and hosts groups (issue 14).
from . import host_maintenance, vm_disks, vm_migration, vm_snapshots  # noqa: F401
from .init import init_command
from .processes import console_proxy_command, sampler_command, serve_command, watch_command


def register(app) -> None:
    for command in (init_command, serve_command, console_proxy_command, sampler_command,
                    watch_command, tasks.worker_command):
        app.cli.add_command(command)
    for module in (hosts, networks, users, keys, images, templates, bootjobs, vms, tasks):
        app.cli.add_command(module.group)
    app.cli.add_command(volumes.group)  # issue 14
    app.cli.add_command(tokens.group)   # issue 15


def main() -> None:
    from flask.cli import FlaskGroup

    from .. import create_app
    from ..logs import configure

    # The commands print what matters; the log shows only problems. The long-running
    # ones (serve, watch, sampler, worker, console-proxy) set the configured logging.
    configure({}, service=False)
    FlaskGroup(create_app=lambda: create_app(), help="LouCloud command line.")(
        prog_name="manage.py")
