"""Display names: what people call their VMs, templates, images, groups and hosts.

A display name may be written in any language: Unicode letters and digits (categories
L* and N*: 实验机-1, テスト機, Сервер, café), with the accents and vowel signs that
belong to a letter (Mn, Mc after a letter or digit: हिन्दी, ไทย), plus the punctuation
each kind allowed before. It is stored normalised (NFKC: a full-width ＶＭ１ is VM1,
an ideographic space a space; outer spaces stripped, inner runs of spaces one), so
two names that differ only in such forms are the same name.

Refused: control and format characters (bidi overrides such as U+202E, zero-width
joiners, the BOM), other invisible ones, private use, unassigned code points, symbols,
and mixed-script confusables: a name that mixes scripts whose letters can be taken for
one another (Latin 'paypal' with a Cyrillic 'а'). The confusable data is Unicode's
(confusables.txt, UTS #39) through the confusable-homoglyphs library. As UTS #39's
"highly restrictive" level does, Latin with the scripts of one East Asian writing
system (Han with Hiragana and Katakana, with Bopomofo, or with Hangul) counts as one
script: `lab1-张三`, `Debian 12 桌面` and `テスト機-1` pass, the library finding no
confusable there anyway except Katakana ト against Han 卜 inside Japanese itself.

These are display names only: libvirt's names (domains lc-<uuid>, volumes), file names
and the guest's hostname stay LouCloud's own ASCII (cloudinit.hostname_for).
Login names stay ASCII (users.py).
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

from confusable_homoglyphs import categories, confusables
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from . import FieldError

MAX_LENGTH = 64
MAX_MARKS = 4     # accents or vowel signs on one letter (UTS #39 suggests at most 4)


@dataclass(frozen=True)
class Kind:
    punctuation: str      # allowed besides letters and digits
    first_alnum: bool     # must start with a letter or digit
    allowed: object       # the sentence saying which names it takes (lazy: translated)


_SPACED = Kind(" ._()+-", True, _l("Use 1 to %(max)d letters (of any language), digits, "
                                   "spaces or . _ ( ) + -, starting with a letter or digit.",
                                   max=MAX_LENGTH))
KINDS = {
    "vm": Kind("-_.", False, _l("Use 1 to %(max)d letters (of any language), digits, '-', "
                                "'_' or '.'.", max=MAX_LENGTH)),
    "template": _SPACED,
    "image": _SPACED,
    "group": _SPACED,
    "host": Kind("._-", True, _l("Use 1 to %(max)d letters (of any language), digits, '.', "
                                 "'_' or '-', starting with a letter or digit.",
                                 max=MAX_LENGTH)),
}

# Invisible although not of a control or format category (Unicode's
# Default_Ignorable_Code_Point beyond Cf): the combining grapheme joiner, Hangul fillers,
# Khmer inherent vowels, Mongolian and other variation selectors.
_INVISIBLE = re.compile("[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u3164\ufe00-\ufe0f"
                        "\uffa0\U000e0100-\U000e01ef]")
_REFUSED_CATEGORIES = {"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"}
_IGNORED_SCRIPTS = {"COMMON", "INHERITED"}
# Latin plus one East Asian writing system: one script (UTS #39, highly restrictive).
_EAST_ASIAN = ({"HAN", "HIRAGANA", "KATAKANA"}, {"HAN", "BOPOMOFO"}, {"HAN", "HANGUL"})


def allowed_message(what: str) -> str:
    """The sentence saying which names a kind takes: the refusal of a name that is empty,
    too long or holds another character."""
    return str(KINDS[what].allowed)


def normal(value: str | None) -> str:
    """The stored form of a name as typed (NFKC, stripped, runs of spaces made one), for
    looking a name up; no check."""
    return re.sub(" {2,}", " ", unicodedata.normalize("NFKC", value or "").strip())


def display_name(value: str | None, field: str = "name", *, what: str) -> str:
    """The normalised display name of a ``what`` (vm, template, image, group, host), or
    FieldError on ``field`` saying what is wrong. Compare stored names with this."""
    kind = KINDS[what]
    if not isinstance(value, str):
        raise FieldError(allowed_message(what), field)
    name = normal(value)
    for char in value.strip() + name:  # as typed first: the message names what was typed
        if unicodedata.category(char) in _REFUSED_CATEGORIES or _INVISIBLE.match(char):
            raise FieldError(_("Names may not hold control or invisible characters; this one "
                               "holds %(code)s.", code=_code(char)), field)
    if not 1 <= len(name) <= MAX_LENGTH:
        raise FieldError(allowed_message(what), field)
    marks, base = 0, False  # marks on the last letter; whether it is a letter or digit
    for i, char in enumerate(name):
        cat = unicodedata.category(char)
        if cat in ("Mn", "Mc"):  # an accent or vowel sign: on a letter or digit only
            marks += 1
            if not base or marks > MAX_MARKS or name[i - 1] == char:
                raise FieldError(_("Put accents and vowel signs on letters, at most "
                                   "%(max)d on one letter, each once.", max=MAX_MARKS), field)
            continue
        marks, base = 0, cat[0] in "LN"
        if base or (char in kind.punctuation and (i or not kind.first_alnum)):
            continue
        raise FieldError(allowed_message(what), field)
    if problem := confusable_mix(name):
        raise FieldError(problem, field)
    return name


def file_slug(name: str, fallback: str) -> str:
    """A display name's stand-in in a file or volume name: its ASCII letters, digits,
    '.', '_' and '-' (any other run: one '-'), and for a name in another language a
    hash of it, so that 桌面 and 服务器 never share a file (image-Debian-12-5f1c0a2e.qcow2).
    An ASCII name's slug is as it always was (volumes already made keep their names)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    if not name.isascii():
        slug = f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:8]}".strip("-")
    return slug or fallback


def scripts_of(name: str) -> set[str]:
    """The scripts of a name's letters (digits and punctuation belong to none)."""
    return categories.unique_aliases(name) - _IGNORED_SCRIPTS


def confusable_mix(name: str) -> str | None:
    """Why ``name`` mixes scripts confusably (a sentence), or None when it does not."""
    scripts = scripts_of(name)
    if len(scripts) < 2 or any(scripts <= {"LATIN"} | system for system in _EAST_ASIAN):
        return None
    letters = [c for c in name if categories.alias(c) in scripts]
    count = {s: sum(categories.alias(c) == s for c in letters) for s in scripts}
    # The fewest first: in 'pаypal' the odd one is the Cyrillic 'а'.
    for char in sorted(dict.fromkeys(letters), key=lambda c: count[categories.alias(c)]):
        script = categories.alias(char)
        others = sorted(scripts - {script})
        found = confusables.is_confusable(char, preferred_aliases=others)
        if not found:
            continue
        like = next((g["c"] for g in found[0]["homoglyphs"]
                     if scripts_of(g["c"]) & set(others)), "")
        other = next(iter(sorted(scripts_of(like) & set(others))), others[0])
        return _("This name mixes %(script)s and %(other)s letters that look alike "
                 "(%(script)s '%(char)s' looks like %(other)s '%(like)s'); write it in one "
                 "script.", script=script.title(), other=other.title(), char=char, like=like)
    return None


def _code(char: str) -> str:
    return f"U+{ord(char):04X}" + (f" {unicodedata.name(char)}"
                                   if unicodedata.name(char, "") else "")
