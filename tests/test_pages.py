"""Error pages, JSON errors, security headers, and the navigation by role; numbers beyond
64 bits in URLs, pages and forms are a 404, a page or a form error, never a 500."""
from __future__ import annotations

import os

from hypothesis import example, given
from hypothesis import strategies as st

from tests.conftest import Client
from tests.support.fuzz import FUZZ, INT64_MAX, check_response, counted
from tests.support.fuzz_web import PAGE_LIMIT, world  # noqa: F401 (world: a fixture)


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


# -- found by the fuzz tests once (tests/test_fuzz_*.py): numbers beyond 64 bits --------
HUGE_IDS = st.integers(min_value=INT64_MAX + 1, max_value=10 ** 40).map(str)
ID_URLS = [("GET", "/vms/{}"), ("GET", "/vms/{}.json"), ("POST", "/vms/{}/start"),
           ("POST", "/vms/{}/console"), ("POST", "/vms/{}/delete"), ("GET", "/users/{}"),
           ("POST", "/users/{}/disable"), ("GET", "/images/{}"), ("GET", "/hosts/{}"),
           ("GET", "/templates/{}/edit")]


def test_huge_ids_in_urls_are_404_not_500(app, world):
    posters = {"admin": world.poster("admin"), "alice": world.poster("alice")}
    with counted("web <int:id> beyond 64 bits") as count:
        @FUZZ
        @given(who=st.sampled_from(sorted(posters)), number=HUGE_IDS,
               target=st.sampled_from(ID_URLS))
        @example(who="alice", number=str(INT64_MAX + 1), target=("GET", "/vms/{}"))
        def run(who, number, target):
            method, pattern = target
            url = pattern.format(number)
            poster = posters[who]
            count.examples += 1
            response = poster.get(url) if method == "GET" else poster.post(url, [])
            count.add(str(response.status_code))
            check_response(response, f"{method} {url} as {who}")
            assert response.status_code in (403, 404)

        run()


def test_huge_page_numbers_are_not_500(app, world):
    posters = {"admin": world.poster("admin"), "alice": world.poster("alice")}
    with counted("web ?page= beyond 64-bit offsets") as count:
        @FUZZ
        @given(who=st.sampled_from(sorted(posters)), path=st.sampled_from(["/", "/users/"]),
               page=st.integers(min_value=PAGE_LIMIT + 2, max_value=10 ** 40))
        @example(who="alice", path="/", page=INT64_MAX)
        def run(who, path, page):
            if path == "/users/" and who != "admin":
                path = "/"
            count.examples += 1
            response = posters[who].get(f"{path}?page={page}")
            count.add(str(response.status_code))
            check_response(response, f"GET {path}?page={page}")
            assert response.status_code == 200

        run()


INTEGER_FIELDS = [("/users/new", "max_vms"), ("/users/{alice}/edit", "max_disk_gib"),
                  ("/settings/", "host_timeout"), ("/templates/new", "vcpus"),
                  ("/templates/{template}/edit", "disk_gib")]


def test_integer_fields_beyond_float_range_are_not_500(app, world):
    admin = world.poster("admin")
    with counted("web IntegerField beyond float range") as count:
        @FUZZ
        @given(target=st.sampled_from(INTEGER_FIELDS),
               number=st.integers(min_value=2 ** 1024, max_value=10 ** 4000))
        @example(target=("/templates/new", "disk_gib"), number=2 * 10 ** 308)
        def run(target, number):
            url, name = target
            url = url.format(alice=world.ids["alice"], template=world.ids["template"])
            count.examples += 1
            response = admin.post(url, [(name, str(number))])
            check_response(response, f"POST {url} {name}={number}")

        run()
