"""Languages (Flask-Babel): every page, message, form, error, e-mail and the command
line in English and Simplified Chinese. The catalogues are loucloud/translations/
<locale>/LC_MESSAGES/messages.po in the repository, compiled to .mo by the set-up
(`make` runs `pybabel compile`), never committed compiled. Chinese is in zh_Hans_CN/:
Babel names zh_CN so, and gettext looks for that directory.

Which language: ?lang= in the URL (the login page's links), else the user's own
choice (the user menu), else the `lang` cookie those links set, else the browser's
Accept-Language, else English. Outside a request
(the command line, the worker): $LOUCLOUD_LANG, else the usual $LC_ALL / $LC_MESSAGES /
$LANG of the shell (zh_CN.UTF-8 gives Chinese).

Times, numbers and sizes are formatted for the language (Babel's CLDR data)."""
from __future__ import annotations

import functools
import os
from datetime import datetime, timezone
from pathlib import Path

from babel.dates import format_datetime
from babel.messages.extract import extract
from babel.numbers import format_decimal
from flask import has_request_context, request
from flask_babel import get_locale, gettext, lazy_gettext

# Locale code -> its own name (the language menus show each in itself).
LANGUAGES = {"en": "English", "zh_CN": "简体中文"}
DEFAULT = "en"
COOKIE = "lang"
# How a time is written (CLDR patterns): ISO 8601's order in English, as the console
# always wrote it; the usual year-month-day with 年月日 in Chinese.
DATE_PATTERNS = {"en": "yyyy-MM-dd HH:mm", "zh_CN": "yyyy年M月d日 HH:mm"}
LAZY = lazy_gettext


def normalise(code: str | None) -> str | None:
    """One of LANGUAGES for a tag such as zh-CN, zh_Hans, zh, en-GB, zh_CN.UTF-8; None
    for anything else."""
    if not code:
        return None
    code = code.split(".")[0].split("@")[0].replace("-", "_").strip()
    primary = code.split("_")[0].lower()
    if primary == "zh":
        return "zh_CN"
    if primary == "en":
        return "en"
    return None


def select_locale() -> str:
    """Flask-Babel's locale selector (see the module's docstring)."""
    if not has_request_context():
        return _from_environment()
    asked = normalise(request.args.get("lang"))
    if asked:       # the login page's language links
        return asked
    user = _user()
    if user is not None and user.is_authenticated and getattr(user, "locale", None) \
            in LANGUAGES:
        return user.locale
    chosen = normalise(request.cookies.get(COOKIE))
    if chosen:
        return chosen
    for tag, _quality in request.accept_languages:
        if found := normalise(tag):
            return found
    return DEFAULT


def _user():
    """The request's user, loading it if need be, but never from inside its own loading
    (a message translated while the session is read would ask again, for ever)."""
    from flask import g
    from flask_login import current_user

    if "_login_user" in g:
        return g._login_user
    if g.get("_i18n_loading"):
        return None
    g._i18n_loading = True
    try:
        return current_user._get_current_object()
    finally:
        g._i18n_loading = False


def _from_environment() -> str:
    for name in ("LOUCLOUD_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        if os.environ.get(name):
            return normalise(os.environ[name]) or DEFAULT
    return DEFAULT


def current() -> str:
    """The language in use: one of LANGUAGES (Babel names zh_CN zh_Hans_CN)."""
    return normalise(str(get_locale())) or DEFAULT


def html_lang() -> str:
    """The page's lang attribute (BCP 47): en, zh-CN."""
    return current().replace("_", "-")


def when(value: datetime | None) -> str:
    """A stored (naive UTC) time for the reader's language, in UTC, said so."""
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return format_datetime(value, DATE_PATTERNS[current()], tzinfo=timezone.utc,
                           locale=get_locale()) + " UTC"


def number(value: float | int, digits: int = 1) -> str:
    """A number with the language's separators (1,234.5)."""
    pattern = "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(value, format=pattern, locale=get_locale())


def size(value: float | int | None, units=("B", "KiB", "MiB", "GiB", "TiB")) -> str:
    """Bytes (or another first unit) in the largest binary unit under 1024."""
    if value is None:
        return "—"
    for unit in units:
        if abs(value) < 1024 or unit == units[-1]:
            return f"{number(value, 0 if unit == 'B' else 1)} {unit}"
        value /= 1024
    return str(value)


@functools.cache
def _script_messages() -> tuple[str, ...]:
    """The texts the pages' scripts say, each marked t("...") in loucloud/static/*.js
    (found the way pybabel extract finds them)."""
    found = []
    for path in sorted((Path(__file__).parent / "static").glob("*.js")):
        with open(path, "rb") as f:
            found += [message for _line, message, _comments, _context in
                      extract("javascript", f, keywords={"t": None})
                      if isinstance(message, str)]
    return tuple(dict.fromkeys(found))


def script_messages() -> dict[str, str]:
    """Those texts in the reader's language: base.html hands them to app.js's t()."""
    return {text: gettext(text) for text in _script_messages()}


def init_app(app) -> None:
    from .extensions import babel

    babel.init_app(app, locale_selector=select_locale,
                   default_translation_directories="translations")
    app.add_template_global(html_lang, "html_lang")
    app.add_template_global(LANGUAGES, "LANGUAGES")
    app.add_template_global(script_messages, "script_messages")
