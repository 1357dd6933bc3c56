"""Every text a person reads is marked for translation and has its Chinese translation
(issue 16, item 4): in the page templates, the pages' scripts, flashed messages,
refusals, form labels and the command line's messages (tests/support/i18n_check.py
says what is looked at). A new sentence that is not marked, or has no translation in
loucloud/translations/zh_Hans_CN/LC_MESSAGES/messages.po, fails here with its place
(`make messages` adds the new ones to the catalogue, to translate)."""
from __future__ import annotations

import pytest

from tests.support import i18n_check


@pytest.fixture(scope="module")
def marked():
    return i18n_check.extracted()


def test_every_text_in_the_templates_and_scripts_is_marked():
    unmarked = i18n_check.unmarked_in_templates() + i18n_check.unmarked_in_scripts()
    assert not unmarked, f"{len(unmarked)} texts not marked for translation:\n" + \
        "\n".join(map(str, unmarked))


def test_every_message_of_the_python_code_is_marked(app):
    with app.app_context():
        refusals = i18n_check.refusal_names()
    unmarked = i18n_check.unmarked_in_python(refusals)
    assert not unmarked, f"{len(unmarked)} messages not marked for translation:\n" + \
        "\n".join(map(str, unmarked))


def test_every_marked_message_reaches_the_catalogue(marked):
    """A mark inside an f-string or inside another mark's values is not extracted: its
    message would never be translated."""
    lost = [m for m in i18n_check.marked_in_python() if m.text not in marked]
    assert not lost, f"{len(lost)} marked messages pybabel does not extract (make the " \
        "message apart, then use it):\n" + "\n".join(map(str, lost))


def test_every_marked_message_has_its_chinese_translation(marked):
    chinese = i18n_check.catalogue()
    missing = [f"{where[0]}: {msgid!r}" for msgid, where in sorted(marked.items())
               if msgid not in chinese or not chinese[msgid].string
               or chinese[msgid].fuzzy]
    assert not missing, f"{len(missing)} messages without a Chinese translation " \
                        "(make messages, then translate them):\n" + "\n".join(missing)


def test_translations_keep_their_placeholders(marked):
    chinese = i18n_check.catalogue()
    wrong = []
    for msgid in marked:
        message = chinese.get(msgid)
        if message is None or not message.string:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for string in strings:
            if i18n_check.placeholders(string) != i18n_check.placeholders(msgid):
                wrong.append(f"{msgid!r} -> {string!r}")
    assert not wrong, "translations whose placeholders differ:\n" + "\n".join(wrong)


def test_the_checks_see_unmarked_text(tmp_path):
    """The checks are not blind: unmarked text of each kind is found."""
    page = tmp_path / "page.html"
    page.write_text('<h1>{{ _("Marked") }}</h1>\n<p title="Hover text">Plain words</p>\n'
                    '{% trans %}Marked block{% endtrans %}<span>{{ vm.name }} MiB</span>')
    assert [t for _, t in i18n_check.template_texts(page)
            if i18n_check.needs_translation(t)] == ["Hover text", "Plain words"]
    assert i18n_check._is_text(__import__("ast").parse('f"{name} was deleted."').body[0].value)
    assert not i18n_check.needs_translation("12 GiB / 3 vCPUs")
    code = tmp_path / "code.py"
    code.write_text('x = f\'<b title="{_("Hidden in an f-string")}">\'\n'
                    'y = _("Outer %(inner)s", inner=_("Inner"))\n')   # this one is seen
    from babel.messages.extract import extract

    with open(code, "rb") as f:
        seen = {m[1] for m in extract("python", f, keywords=i18n_check.KEYWORDS)}
    assert seen == {"Outer %(inner)s", "Inner"}
    assert [m.text for m in i18n_check.marked_in_python([code])
            if m.text not in seen] == ["Hidden in an f-string"]
