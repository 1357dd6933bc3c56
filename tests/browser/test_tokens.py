"""In a real browser: a user makes an API token on the Profile page, copies it with the
Copy button, uses it, and revokes it through the confirmation dialog."""
from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.factories import make_user
from tests.support.api import ApiClient
from tests.support.browser import login, shot

pytestmark = pytest.mark.browser


def test_a_token_made_copied_and_revoked(app, live_server, page):
    with app.app_context():
        make_user("alice")
    base = live_server.url
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    login(page, base, "alice", PASSWORD)
    page.goto(f"{base}/profile")
    assert "No token yet." in page.inner_text("#api-tokens")
    page.fill("#token-name", "backup script")
    page.fill("#token-expires", "")           # never
    page.check("#token-read-only")
    with page.expect_navigation():
        page.click("button:has-text('Create token'), input[value='Create token']")
    secret = page.input_value("#new-token-secret")
    assert secret.startswith("lct_")
    assert "it will not be shown again" in page.inner_text("#api-tokens")
    page.click("button[data-copy]")
    page.wait_for_function("() => document.querySelector('button[data-copy]')"
                           ".textContent.includes('Copied')")
    assert page.evaluate("() => navigator.clipboard.readText()") == secret
    shot(page, "profile-token-made")
    row = page.locator("tr[data-state=active]")
    assert "read-only" in row.inner_text() and "never" in row.inner_text()
    assert ApiClient(app, secret).get("/api/v1/vms").status_code == 200

    page.reload()
    assert page.locator("#new-token-secret").count() == 0      # shown once
    page.click("button:has-text('Revoke')")
    page.wait_for_selector("#confirm-modal.show")
    assert "Revoke the token backup script?" in page.inner_text("#confirm-body")
    with page.expect_navigation():
        page.click("#confirm-ok")
    assert "Token backup script" in page.inner_text("main")
    assert page.locator("tr[data-state=revoked]").count() == 1
    assert ApiClient(app, secret).get("/api/v1/vms").status_code == 401
    assert page.js_errors == []
