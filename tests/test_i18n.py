"""Languages (issue 16, item 4): English and Simplified Chinese with Flask-Babel. The
language comes from the login page's links (kept in a cookie), the user's own choice
(the user menu, the API, the command line), else the browser's Accept-Language; the
command line speaks $LOUCLOUD_LANG or $LANG. Dates and numbers follow the language."""
from __future__ import annotations

import re
from datetime import datetime

from loucloud.extensions import db
from loucloud.i18n import normalise
from loucloud.models import User
from tests.conftest import Client
from tests.support.api import ApiClient, make_token


def _lang(response) -> str:
    return re.search(r'<html lang="([^"]+)"', response.get_data(as_text=True)).group(1)


def test_the_browser_language_then_the_login_page_links(app, anon):
    assert _lang(anon.get("/login")) == "en"
    assert _lang(anon.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"})) == \
        "zh-CN"
    assert _lang(anon.get("/login", headers={"Accept-Language": "fr, zh-TW;q=0.5"})) == \
        "zh-CN"
    assert _lang(anon.get("/login", headers={"Accept-Language": "fr"})) == "en"
    page = anon.get("/login?lang=zh_CN")
    assert _lang(page) == "zh-CN"
    assert "lang=zh_CN" in page.headers["Set-Cookie"]
    # the cookie keeps it, whatever the browser says
    assert _lang(anon.get("/login", headers={"Accept-Language": "en"})) == "zh-CN"
    assert _lang(anon.get("/login?lang=en")) == "en"


def test_a_users_choice_wins_over_the_browser_and_speaks_his_language(app, user, as_user):
    english = {"Accept-Language": "en"}
    response = as_user.post("/language", {"locale": "zh_CN", "next": "/profile"},
                            headers=english)
    assert response.status_code == 302 and response.headers["Location"] == "/profile"
    page = as_user.get("/profile", headers=english)
    assert _lang(page) == "zh-CN"
    assert "您的页面现在使用简体中文。" in page.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, user.id).locale == "zh_CN"
    # back to the browser's language
    as_user.post("/language", {"locale": "", "next": "/profile"}, headers=english)
    assert _lang(as_user.get("/profile", headers=english)) == "en"
    # a refusal in his language: an unknown language
    as_user.post("/language", {"locale": "zh_CN"})
    refused = as_user.post("/language", {"locale": "xx", "next": "/profile"})
    assert "请选择以下之一：en, zh_CN，或不选（跟随浏览器的语言）。" in \
        as_user.get(refused.headers["Location"]).get_data(as_text=True)


def test_the_api_and_the_command_line(app, user, admin):
    api = ApiClient(app, make_token(app, "alice"))
    answer = api.post("/api/v1/users/me/language", json={"locale": "zh_CN"})
    assert answer.status_code == 200
    assert answer.json["message"] == "您的页面现在使用简体中文。"
    assert api.get("/api/v1/users/me").json["locale"] == "zh_CN"
    assert api.post("/api/v1/users/me/language", json={"locale": "fr"}).status_code == 422
    runner = app.test_cli_runner()
    said = runner.invoke(args=["users", "language", "alice", "browser"],
                         env={"LOUCLOUD_LANG": "zh_CN.UTF-8"})
    assert said.exit_code == 0 and said.output.strip() == "您的页面现在跟随浏览器的语言。"
    said = runner.invoke(args=["users", "language", "alice", "en"],
                         env={"LOUCLOUD_LANG": "", "LC_ALL": "", "LC_MESSAGES": "",
                              "LANG": "C.UTF-8"})
    assert said.output.strip() == "Your pages are now in English."


def test_times_and_numbers_follow_the_language(app):
    from loucloud import i18n
    moment = datetime(2026, 11, 26, 8, 5)
    with app.test_request_context("/", headers={"Accept-Language": "zh-CN"}):
        assert i18n.when(moment) == "2026年11月26日 08:05 UTC"
        assert i18n.size(1536 * 1024 ** 2) == "1.5 GiB"
        assert i18n.number(1234567.25) == "1,234,567.2"
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert i18n.when(moment) == "2026-11-26 08:05 UTC"
        assert i18n.number(1234567.25, 2) == "1,234,567.25"


def test_language_tags():
    assert [normalise(t) for t in ("zh-CN", "zh_Hans", "zh", "zh_CN.UTF-8", "en-GB",
                                   "en_US.UTF-8", "fr", "", None, "C.UTF-8")] == \
        ["zh_CN", "zh_CN", "zh_CN", "zh_CN", "en", "en", None, None, None, None]
