"""LouCloud's own processes: manage.py serve (the web server, which starts the others),
watch, sampler and console-proxy. The only module that starts programs: LouCloud's own."""
import os
import signal
import subprocess
import sys
import threading

import click
from flask import current_app
from flask.cli import ScriptInfo, pass_script_info, with_appcontext
from flask_babel import gettext as _

from ..logs import configure as configure_logging


@click.command("sampler")
@click.option("--once", is_flag=True, help="One cycle, then exit (for cron or a test).")
@with_appcontext
def sampler_command(once: bool) -> None:
    """Sample every host and VM for the charts, every sample_interval_seconds."""
    from ..services.monitoring import sampler

    configure_logging(current_app.config)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        sampler.run(stop, once=once)
    except KeyboardInterrupt:
        pass


@click.command("watch")
@pass_script_info
def watch_command(info: ScriptInfo) -> None:
    """Keep every VM's live state and every host's health in the database, from
    libvirt's events (one process across all LouCloud servers: a lease elects it)."""
    from ..services import watching

    app = info.load_app()
    configure_logging(app.config)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        watching.run(app, stop)
    except KeyboardInterrupt:
        stop.set()


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--console/--no-console", default=True, show_default=True,
              help="Start the console proxy beside the web server.")
@pass_script_info
def serve_command(info: ScriptInfo, host: str, port: int, console: bool) -> None:
    """Serve LouCloud with the embedded threaded server (no debugger, no reloader),
    beside the watcher, the sampler, the task worker and the console proxy on its own
    port."""
    from werkzeug.serving import run_simple

    app = info.load_app()
    configure_logging(app.config)
    helpers = [subprocess.Popen([sys.executable, os.path.abspath(sys.argv[0]), name])
               for name in ("watch", "sampler", "worker")]
    if console:
        helpers.append(subprocess.Popen([sys.executable, os.path.abspath(sys.argv[0]),
                                         "console-proxy"]))
    url = f"http://{host}:{port}/"
    with app.app_context():
        click.echo(_("LouCloud is on %(url)s  (Ctrl-C stops it)", url=url))
    # A SIGTERM (kill, systemd) ends the server like Ctrl-C: its helpers stop with it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
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
    from ..console.proxy import make_server

    app = info.load_app()
    configure_logging(app.config)
    host = host or app.config["CONSOLE_PROXY_HOST"]
    port = port or app.config["CONSOLE_PROXY_PORT"]
    server = make_server(app, host, port)
    address = f"{host}:{port}"
    with app.app_context():
        click.echo(_("Console proxy on %(address)s for %(origins)s", address=address,
                     origins=", ".join(sorted(server.gate.origins))))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
