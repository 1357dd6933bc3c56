"""What every command group shares: failing with a message, the audit record of a
state-changing command, and the shapes of the list and delete commands."""
from __future__ import annotations

import functools
import getpass
import json
import sys
import unicodedata
from typing import Any, Callable, NoReturn

import click
from flask.cli import AppGroup
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..services import ServiceError, audit


# A task's state (data: "succeeded") as a person reads it.
TASK_STATES = {"queued": _l("queued"), "running": _l("running"),
               "succeeded": _l("succeeded"), "failed": _l("failed"),
               "cancelled": _l("cancelled")}


def task_state(state: str) -> str:
    """A task's state in the reader's language (an unknown one as it is)."""
    return str(TASK_STATES.get(state, state))


def fail(message: str) -> NoReturn:
    click.echo(_("error: %(message)s", message=message), err=True)
    sys.exit(1)


def audited(action: str, target_param: str | None = "name"):
    """Record a state-changing command in the audit log: ok when it returns, refused
    when it fails (exit 1). The target is the value of one of its arguments."""
    def decorate(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            target = str(kwargs.get(target_param, "")) if target_param else ""
            who = f"cli:{getpass.getuser()}"
            try:
                result = fn(*args, **kwargs)
            except SystemExit as exc:
                if exc.code not in (0, None):
                    audit.record(action, audit.REFUSED, target=target, username=who,
                                 address="cli")
                raise
            audit.record(action, audit.OK, target=target, username=who, address="cli")
            return result
        return run
    return decorate


def service(call: Callable[[], Any]) -> Any:
    """Run a service call; a refusal ends the command with its message (exit 1)."""
    try:
        return call()
    except ServiceError as exc:
        fail(str(exc))


def echo_rows(rows: list[dict], as_json: bool, columns: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    widths = {c: max([len(c)] + [width(str(r.get(c, ""))) for r in rows]) for c in columns}
    click.echo("  ".join(c.upper().ljust(widths[c]) for c in columns))
    for r in rows:
        click.echo("  ".join(pad(str(r.get(c, "")), widths[c]) for c in columns))


def width(text: str) -> int:
    """Columns ``text`` takes in a terminal: a Chinese, Japanese or Korean character
    (East Asian wide or full-width) two, an accent on a letter none."""
    return sum(0 if unicodedata.combining(c) else
               2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def pad(text: str, columns: int) -> str:
    return text + " " * (columns - width(text))


def list_command(group: AppGroup, rows: Callable[[], list[dict]], columns: list[str],
                 help: str) -> None:
    """``<group> list [--json]``: a table of ``columns`` (every field with --json)."""
    @group.command("list", help=help)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    def list_(as_json: bool) -> None:
        echo_rows(rows(), as_json, columns)


def delete_command(group: AppGroup, verb: str, find: Callable[[str], Any],
                   delete: Callable[[Any], Any], done, help: str) -> None:
    """``<group> <verb> NAME``: find the thing by name, call the service, print
    ``done`` (a lazy message with %(name)s, formatted with the name when it is said),
    audited as ``<group>.<verb>``."""
    @group.command(verb, help=help)
    @click.argument("name")
    @audited(f"{group.name}.{verb}")
    def delete_(name: str) -> None:
        service(lambda: delete(find(name)))
        click.echo(str(done) % {"name": name})
