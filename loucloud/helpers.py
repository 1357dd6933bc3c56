"""Template filters and globals, and small helpers of the views."""
from __future__ import annotations

import os
from datetime import datetime
from typing import Any, Callable
from urllib.parse import quote

from flask import Response, flash, jsonify, redirect, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from werkzeug.routing import IntegerConverter

from .errors import error_response, wants_json
from .models import INT64_MAX
from .services import ServiceError, tasklist
from .services.names import file_slug
from .services.vms.views import STATE_LABELS, state_label


class Int64Converter(IntegerConverter):
    """``<int:...>`` that matches only what a database id can be: a larger number is
    404 (no such page), not an OverflowError when the query is bound."""

    def __init__(self, map, fixed_digits=0, min=None, max=INT64_MAX, signed=False):
        super().__init__(map, fixed_digits, min, max, signed)


def page_arg(per_page: int) -> int:
    """The ?page= argument: 1 when missing or not a number, and never so far that its
    offset is beyond what a database can bind."""
    page = request.args.get("page", 1, type=int) or 1
    return max(1, min(page, INT64_MAX // per_page))


class EmptyForm(FlaskForm):
    """A form with only the CSRF token: the body of every POST button."""


def show_error(form: FlaskForm, exc, default: str | None = None) -> None:
    """Put a service's refusal next to the fields it names (``exc.errors``), else next
    to ``default``, else at the top of the page."""
    errors = getattr(exc, "errors", None) or {}
    placed = {field: message for field, message in errors.items() if field in form}
    if placed:
        for field, message in placed.items():
            form[field].errors.append(message)
    elif default in form:
        form[default].errors.append(str(exc))
    else:
        flash(str(exc), "danger")


URL = str | Callable[[Any], str]


def perform(call: Callable[[], Any], *, done: str | Callable[[Any], str] | None,
            back: URL, refused_back: str | None = None):
    """The shape of every button's view: call the service; on a refusal flash it (or
    answer JSON with its status) and go to ``refused_back`` (default ``back``); on
    success flash ``done`` (or answer JSON with it) and go to ``back``. ``done`` and
    ``back`` may be functions of what the service returned; ``done`` None flashes
    nothing."""
    try:
        result = call()
    except ServiceError as exc:
        if wants_json():
            return error_response(exc.status, str(exc))
        flash(str(exc), "danger")
        target = refused_back or back
        return redirect(target if isinstance(target, str) else target(None))
    message = done(result) if callable(done) else done
    if wants_json():
        return jsonify({"message": message} if message else {})
    if message:
        flash(message, "success")
    return redirect(back(result) if callable(back) else back)


def download(body: bytes | str, filename: str, mimetype: str) -> Response:
    """A file to save (a CSV of passwords, an export) named ``filename``, which may hold
    a display name in any language. Content-Disposition says it twice (RFC 6266): an
    ASCII ``filename=`` for clients that know no better (the name's ASCII slug, a hash
    standing for the rest: names.file_slug) and the exact UTF-8 name in ``filename*=``
    (RFC 5987 percent-encoding), which browsers prefer."""
    response = Response(body, mimetype=mimetype)
    stem, ext = os.path.splitext(filename)
    if not ext.isascii():
        stem, ext = filename, ""
    plain = file_slug(stem, "download") + ext
    if plain == filename:
        response.headers.set("Content-Disposition", "attachment", filename=filename)
    else:
        response.headers.set("Content-Disposition", "attachment", filename=plain, **{
            "filename*": "UTF-8''" + quote(filename, safe="!#$&+-.^_`|~")})
    return response


def ago(value: datetime | None) -> str:
    """How long ago: "12 s ago", "3 min ago", "2 h ago", "4 d ago"."""
    if value is None:
        return "—"
    from .models import utcnow
    seconds = int((utcnow() - value).total_seconds())
    if seconds < 60:
        return _("%(n)s s ago", n=max(seconds, 0))
    if seconds < 3600:
        return _("%(n)s min ago", n=seconds // 60)
    if seconds < 86400:
        return _("%(n)s h ago", n=seconds // 3600)
    return _("%(n)s d ago", n=seconds // 86400)


def vm_state_badge(state: str, vm_id: int | None = None,
                   as_of: datetime | None = None) -> Markup:
    """A VM's state as a badge (live.js and follow.js update it by its data-vm): one
    Python call, not a Jinja macro nor Markup.format (ten times slower), since the VM
    list draws 50 of them a page. The state as data (data-state) stays as stored; the
    badge says it in the reader's language (views.state_label)."""
    text = escape(state)
    extra = f' data-vm="{int(vm_id)}"' if vm_id else ""
    when = _("as of %(ago)s", ago=ago(as_of)) if as_of else ""   # not in the f-string:
    title = f' title="{escape(when)}"' if as_of else ""            # extracted from here
    return Markup(f'<span class="badge vm-state"{extra} data-state="{text}"{title}>'
                  f'{escape(state_label(state))}</span>')


def register(app) -> None:
    from . import i18n

    app.add_template_filter(i18n.when, "when")   # for the reader's language

    app.add_template_filter(ago, "ago")
    # what a task says (stored by the worker as messages) in the reader's language
    app.add_template_global(tasklist.says, "says")
    app.add_template_global(vm_state_badge, "vm_state_badge")
    app.add_template_global(state_label, "vm_state_label")
    # the same labels for the pages' scripts (follow.js), from the one table
    app.add_template_global(lambda: {s: str(label) for s, label in STATE_LABELS.items()},
                            "vm_state_labels")

    @app.template_filter("mib")
    def mib(value: int | None) -> str:
        if value is not None and value < 1024:
            return f"{i18n.number(value, 0)} MiB"
        return i18n.size(value, ("MiB", "GiB", "TiB"))

    app.add_template_filter(i18n.size, "bytes")

    @app.template_filter("percent")
    def percent(used: int | float | None, total: int | float | None) -> int:
        if not used or not total:
            return 0
        return max(0, min(100, round(100 * used / total)))

    # the labels in the reader's language when the menu is drawn (lazy)
    nav = [("dashboard.index", _l("Dashboard"), "speedometer2", False),
           ("vms.index", _l("VMs"), "pc-display", False),
           ("tasks.index", _l("Tasks"), "list-task", False),
           ("images.index", _l("Images"), "hdd", True),
           ("templates.index", _l("Templates"), "boxes", True),
           ("hosts.index", _l("Hosts"), "hdd-rack", True),
           ("networks.index", _l("Networks"), "diagram-3", True),
           ("volumes.index", _l("Volumes"), "device-hdd", True),  # issue 14
           ("bootjobs.index", _l("Boot jobs"), "rocket-takeoff", True),
           ("users.index", _l("Users"), "people", True),
           # issue 16: the administrator's, and the groups' managers'
           ("groups.index", _l("Groups"), "diagram-2", "managers"),
           ("settings.index", _l("Settings"), "gear", True),
           ("audit.index", _l("Audit"), "journal-text", True)]

    @app.context_processor
    def globals_():
        items = [item for item in nav if item[0] in app.view_functions]
        return {"nav_items": items, "watcher_notice": _watcher_notice,
                "manages_groups": _manages_groups}


def _manages_groups() -> bool:
    """Whether the user of the request manages a group (the menu shows Groups)."""
    from flask_login import current_user

    from .services import groups

    return current_user.is_authenticated and groups.manages_any(current_user)


def _watcher_notice() -> str | None:
    """For the administrator, when no watcher keeps the live states: why pages ask the
    hosts themselves (slower, and a dead host makes them wait)."""
    from flask_login import current_user

    from .services import watching

    if not current_user.is_authenticated or not current_user.is_admin or watching.fresh():
        return None
    from .i18n import when

    beat = watching.last_beat()
    if beat:
        return _("No watcher is running since %(time)s: every page asks the hosts for the "
                 "VMs' states. Start it with `manage.py watch` (make run and the systemd "
                 "unit do).", time=when(beat))
    return _("No watcher is running: every page asks the hosts for the VMs' states. Start "
             "it with `manage.py watch` (make run and the systemd unit do).")
