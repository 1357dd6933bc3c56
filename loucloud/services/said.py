"""What the worker says, said in the reader's language (issue 16, "Chinese and
English"). A task's message, result and error and a batch's failure reasons are written
by the worker, whose language is not the reader's: they are stored as the message's
msgid and its values, and said in the reader's language when they are shown (pages,
their JSON, the API, the command line).

A message is marked where it is made, lazily: ``_l("Making %(name)s ...", name=...)``,
``lazy_ngettext(...)`` (Flask-Babel's lazy strings keep the msgid and the values they
were given), or several of them said one after the other: ``Joined([...], "; ")``. A
value may itself be a message (a failure's reason inside a summary): it is said in the
reader's language too. ``encode`` turns one into its stored form, a JSON object
(``{"said": msgid, "with": {values}}``; a plural adds ``"plural"`` and ``"n"``;
``{"joined": [...], "sep": "; "}``); ``render`` says a stored text in the current
language. A text that is not such an object (rows written before, libvirt's own words)
is shown as it was written, or from the catalogue when it is one of the value-less
English messages LouCloud used to store ("Done.").

A refusal keeps its message: ``ServiceError(_l(...))`` is its text in the worker's
language and its ``said`` for the row (``of(exc)``)."""
from __future__ import annotations

import json
import logging
from typing import Any

from flask_babel import LazyString, gettext, ngettext

log = logging.getLogger(__name__)

_STARTS = ('{"said":', '{"joined":')


class Joined:
    """Messages (or plain texts) said one after the other with ``sep`` between them,
    each in the reader's language."""

    __slots__ = ("items", "sep")

    def __init__(self, items, sep: str = "; "):
        self.items, self.sep = list(items), sep

    def __str__(self) -> str:
        return _say(node(self))

    def __bool__(self) -> bool:
        return bool(self.items)

    def __repr__(self) -> str:
        return f"Joined({self.items!r}, {self.sep!r})"


class Stored:
    """A message read back from its stored form (an encoded text, its JSON data, or
    plain text), to be said again or put inside another message."""

    __slots__ = ("data",)

    def __init__(self, stored: Any):
        self.data = node(stored)

    def __str__(self) -> str:
        return str(render(self.data) or "")

    def __repr__(self) -> str:
        return f"Stored({self.data!r})"


def is_message(value: Any) -> bool:
    """A message said later (a lazy string of Flask-Babel's, a Joined, a Stored)."""
    return isinstance(value, (LazyString, Joined, Stored))


def _encoded(text: Any) -> bool:
    return isinstance(text, str) and text.startswith(_STARTS)


def _decoded(text: str) -> Any:
    """The stored object of an encoded text (None: it is not one after all)."""
    try:
        found = json.loads(text)
    except ValueError:
        return None
    return found if isinstance(found, dict) and ("said" in found or "joined" in found) \
        else None


def node(message: Any) -> Any:
    """A message as JSON data: a dict for a message, its text for plain text, a number
    as it is. An encoded text is taken apart again (nested messages stay messages)."""
    if isinstance(message, LazyString):
        func, args, values = message._func, message._args, message._kwargs
        if func is gettext and len(args) == 1:
            found: dict = {"said": args[0]}
        elif func is ngettext and len(args) == 3:
            found = {"said": args[0], "plural": args[1], "n": args[2]}
        else:                              # a lazy string of another kind: its text
            return str(message)
        if values:
            found["with"] = {key: node(value) for key, value in values.items()}
        return found
    if isinstance(message, Joined):
        if len(message.items) == 1:
            return node(message.items[0])
        return {"joined": [node(item) for item in message.items], "sep": message.sep}
    if isinstance(message, Stored):
        return message.data
    if isinstance(message, dict):          # already JSON data (a batch's failure)
        return message
    if _encoded(message):
        return _decoded(message) or message
    if isinstance(message, (str, int, float)) and not isinstance(message, bool):
        return message
    return "" if message is None else str(message)


def encode(message: Any) -> str:
    """The stored form of ``message``: a message as its JSON object (one without values
    as its msgid, as LouCloud always stored those: ``render`` finds it in the
    catalogue), text as itself."""
    found = node(message)
    if isinstance(found, dict):
        if set(found) == {"said"} and not _encoded(found["said"]):
            return str(found["said"])
        return json.dumps(found, ensure_ascii=False, separators=(",", ":"))
    return str(found)


def store(message: Any, limit: int) -> str:
    """``encode(message)`` when it fits in ``limit`` characters (a column's size),
    else the message's text in the current language, cut at ``limit``."""
    stored = encode(message)
    if len(stored) <= limit:
        return stored
    return render(stored)[:limit]


def of(exc: BaseException) -> Any:
    """What an exception says: the message it was raised with when it kept one (a
    ServiceError's ``said``, a lazy message as its one argument), else its text."""
    kept = getattr(exc, "said", None)
    if kept is not None:
        return kept
    if len(exc.args) == 1 and is_message(exc.args[0]):
        return exc.args[0]
    return str(exc)


def render(stored: Any) -> Any:
    """A stored text (or a message, or its JSON data) in the current language. Plain
    text is found in the catalogue as a msgid (the value-less English messages older
    rows hold) or else shown as it is; empty stays empty (None stays None)."""
    if not stored:
        return stored
    if isinstance(stored, str) and not _encoded(stored):
        return gettext(stored)
    return _say(node(stored))


def _say(found: Any) -> str:
    """JSON data (``node``) in the current language."""
    if isinstance(found, dict):
        if "joined" in found:
            return str(found.get("sep", " ")).join(_say(item) for item in found["joined"])
        return _sentence(found)
    if _encoded(found):
        decoded = _decoded(found)
        return str(found) if decoded is None else _say(decoded)
    return str(found)


def _value(found: Any) -> Any:
    """A message's value for its placeholder: numbers stay numbers (%(n)d)."""
    if isinstance(found, (int, float)) and not isinstance(found, bool):
        return found
    return _say(found)


def _sentence(found: dict) -> str:
    msgid = str(found.get("said", ""))
    values = {key: _value(value) for key, value in (found.get("with") or {}).items()}
    plural, n = found.get("plural"), found.get("n")
    try:
        if plural is not None and isinstance(n, int):
            return ngettext(msgid, str(plural), n, **values)
        return gettext(msgid, **values) if values else gettext(msgid)
    except (KeyError, ValueError, TypeError) as exc:   # a translation that does not fit
        log.warning("message %r not said in the current language: %s", msgid, exc)
    english = plural if plural is not None and n != 1 else msgid
    try:
        return str(english) % ({"num": n, **values} if plural is not None else values) \
            if values or plural is not None else str(english)
    except (KeyError, ValueError, TypeError):
        return str(english)
