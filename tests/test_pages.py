"""Error pages, JSON errors, security headers, and the navigation by role."""
from __future__ import annotations

import os

from tests.conftest import Client


def test_404_page_has_no_traceback(as_user):
    response = as_user.get("/no/such/page")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "Not found" in page and "Traceback" not in page


def test_json_errors_for_api_calls(anon):
    response = anon.get("/hosts/status.json")
    assert response.status_code == 401
    assert response.get_json() == {"error": "Log in first.", "status": 401}


def test_security_headers(anon):
    response = anon.get("/login")
    h = response.headers
    assert "script-src 'self'" in h["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in h["Content-Security-Policy"]
    assert "unsafe-inline" not in h["Content-Security-Policy"]
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"] == "same-origin"
    assert h["X-Frame-Options"] == "SAMEORIGIN"


def test_no_inline_scripts_or_styles(as_admin, admin):
    for url in ("/hosts/", "/users/", f"/users/{admin.id}", "/settings/", "/profile"):
        page = as_admin.get(url).get_data(as_text=True)
        assert "<script>" not in page and " style=" not in page, url
        assert "onclick=" not in page, url


def test_navigation_fits_the_role(as_admin, as_user):
    admin_page = as_admin.get("/profile").get_data(as_text=True)
    user_page = as_user.get("/profile").get_data(as_text=True)
    for link in ('href="/users/"', 'href="/hosts/"', 'href="/settings/"'):
        assert link in admin_page
        assert link not in user_page


def test_database_outage_is_a_clear_503(app, as_user):
    """The database file disappears under a logged-in user: a 503 page, no traceback."""
    from loucloud.extensions import db
    path = app.config["SQLALCHEMY_DATABASE_URI"].replace("sqlite:///", "")
    with app.app_context():
        db.engine.dispose()
    os.rename(path, path + ".away")
    os.mkdir(path)  # a directory where the database was: it cannot be opened
    try:
        response = as_user.get("/profile")
        assert response.status_code == 503
        assert "database is not answering" in response.get_data(as_text=True)
    finally:
        os.rmdir(path)
        os.rename(path + ".away", path)
    with app.app_context():
        db.engine.dispose()
    assert as_user.get("/profile").status_code == 200


def test_unexpected_error_is_a_500_page_without_details(app, user):
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production

    @app.route("/_bug")
    def bug():
        raise ValueError("secret internal detail")
    client = Client(app)
    client.login("alice")
    response = client.get("/_bug")
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "secret internal detail" not in page and "Traceback" not in page
