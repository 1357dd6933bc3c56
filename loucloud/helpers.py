"""Template filters and globals, and small helpers of the views."""
from __future__ import annotations

from datetime import datetime

from flask import flash, request
from flask_wtf import FlaskForm
from werkzeug.routing import IntegerConverter

from .extensions import db
from .models import INT64_MAX


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


def paginate(stmt, per_page: int):
    """db.paginate of ``stmt`` at ?page=; a page beyond the last (whatever its number)
    shows the last page."""
    page = db.paginate(stmt, page=page_arg(per_page), per_page=per_page, error_out=False)
    if page.pages and page.page > page.pages:
        page = db.paginate(stmt, page=page.pages, per_page=per_page, error_out=False)
    return page


class EmptyForm(FlaskForm):
    """A form with only the CSRF token: the body of every POST button."""


def show_error(form: FlaskForm, exc, default: str | None = None) -> None:
    """Put a service's refusal next to the field it names (``exc.field``), else next to
    ``default``, else at the top of the page."""
    field = getattr(exc, "field", None)
    target = field if field in form else default
    if target in form:
        form[target].errors.append(str(exc))
    else:
        flash(str(exc), "danger")


def register(app) -> None:
    @app.template_filter("when")
    def when(value: datetime | None) -> str:
        return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"

    @app.template_filter("ago")
    def ago(value: datetime | None) -> str:
        if value is None:
            return "—"
        from .models import utcnow
        seconds = int((utcnow() - value).total_seconds())
        if seconds < 60:
            return f"{max(seconds, 0)} s ago"
        if seconds < 3600:
            return f"{seconds // 60} min ago"
        if seconds < 86400:
            return f"{seconds // 3600} h ago"
        return f"{seconds // 86400} d ago"

    @app.template_filter("mib")
    def mib(value: int | None) -> str:
        if value is None:
            return "—"
        if value >= 1024 * 1024:
            return f"{value / 1024 / 1024:.1f} TiB"
        if value >= 1024:
            return f"{value / 1024:.1f} GiB"
        return f"{value} MiB"

    @app.template_filter("bytes")
    def human_bytes(value: int | None) -> str:
        if value is None:
            return "—"
        for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
            if abs(value) < 1024 or unit == "TiB":
                return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
            value /= 1024
        return str(value)

    @app.template_filter("percent")
    def percent(used: int | float | None, total: int | float | None) -> int:
        if not used or not total:
            return 0
        return max(0, min(100, round(100 * used / total)))

    nav = [("dashboard.index", "Dashboard", "speedometer2", False),
           ("vms.index", "VMs", "pc-display", False),
           ("images.index", "Images", "hdd", True),
           ("vmtemplates.index", "Templates", "boxes", True),
           ("servers.index", "Hosts", "hdd-rack", True),
           ("users.index", "Users", "people", True),
           ("settings.index", "Settings", "gear", True),
           ("audit.index", "Audit", "journal-text", True)]

    @app.context_processor
    def globals_():
        items = [item for item in nav if item[0] in app.view_functions]
        return {"nav_items": items}
