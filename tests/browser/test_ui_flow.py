"""In a real browser: the administrator prepares, a user creates, resets and deletes a
VM, with the confirmation dialogs, and no error page on any step."""
from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD
from tests.factories import make_catalog, make_user
from tests.support.browser import login, shot

pytestmark = pytest.mark.browser


def test_user_creates_resets_and_deletes_a_vm(app, live_server, page, test_host):
    with app.app_context():
        make_user("admin", is_admin=True)
        make_user("alice")
        make_catalog(("h1", test_host))
    base = live_server.url
    login(page, base, "alice", PASSWORD)
    assert page.url == f"{base}/"
    page.click("text=New VM")
    page.fill("#name", "browser-vm")
    with page.expect_navigation():
        page.click("button:has-text('Create VM')")
    assert re.search(r"/vms/\d+$", page.url)
    assert page.locator(".vm-state").inner_text() == "running"
    shot(page, "vm-created")

    page.click("button:has-text('Reset')")
    page.wait_for_selector("#confirm-modal.show")
    assert "unsaved data in the guest is lost" in page.inner_text("#confirm-body")
    with page.expect_navigation():
        page.click("#confirm-ok")
    assert "browser-vm was reset." in page.inner_text("main")

    page.click("button:has-text('Delete')")
    page.wait_for_selector("#confirm-modal.show")
    page.click("#confirm-modal button:has-text('Cancel')")
    page.wait_for_selector("#confirm-modal", state="hidden")
    assert page.locator(".vm-state").inner_text() == "running"  # cancelled: nothing sent

    page.click("button:has-text('Delete')")
    page.wait_for_selector("#confirm-modal.show")
    with page.expect_navigation():
        page.click("#confirm-ok")
    page.wait_for_timeout(2500)  # longer than the state poll: no reload into a 404
    assert page.url == f"{base}/"
    assert "browser-vm was deleted with its disks." in page.inner_text("main")
    assert "No VM yet" in page.inner_text("main")
    assert page.js_errors == []


def test_admin_pages_render_without_errors(app, live_server, page, test_host):
    with app.app_context():
        make_user("admin", is_admin=True)
        make_catalog(("h1", test_host))
    login(page, live_server.url, "admin", PASSWORD)
    for path in ("/", "/images/", "/templates/", "/hosts/", "/users/", "/settings/",
                 "/profile", "/vms/new", "/hosts/new", "/images/new", "/templates/new"):
        response = page.goto(live_server.url + path)
        assert response.status == 200, path
        assert page.locator("nav.navbar").count() == 1
    page.goto(live_server.url + "/hosts/")
    width = page.evaluate(
        "() => document.querySelector('.progress-bar[data-width]').style.width")
    assert width.endswith("%")  # set by app.js: no inline style in the HTML
    # The administrator's menu (13 entries) fits the window: it wraps, in both
    # languages, rather than pushing the user menu off the dark bar.
    for language in ("en", "zh_CN"):
        page.set_viewport_size({"width": 1600, "height": 800})
        page.click("#user-menu")
        with page.expect_navigation():
            page.click(f"button[name=locale][value={language}]")
        for window in (1400, 1100):
            page.set_viewport_size({"width": window, "height": 800})
            assert page.evaluate("document.documentElement.scrollWidth") <= window, \
                (language, window)
            assert page.locator("#user-menu").bounding_box()["x"] + \
                page.locator("#user-menu").bounding_box()["width"] <= window
    assert page.js_errors == []
