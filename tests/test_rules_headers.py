"""The security headers of every response and the console's websocket address
(security.py): exactly what a browser gets, by how the site is reached."""
from __future__ import annotations

import pytest

from tests.conftest import Client
from tests.factories import make_catalog, make_vm

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; "
       "img-src 'self' data: blob:; font-src 'self'; connect-src {connect}; "
       "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'")
ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
NAMES = [*ALWAYS, "Content-Security-Policy", "Strict-Transport-Security", "Cache-Control"]


def security_headers(response) -> dict[str, str]:
    return {name: response.headers[name] for name in NAMES if name in response.headers}


def test_an_anonymous_page_over_http(anon):
    assert security_headers(anon.get("/login")) == {
        **ALWAYS, "Content-Security-Policy": CSP.format(connect="'self' ws://localhost:6080")}


def test_a_logged_in_page_over_https_is_not_cached_and_asks_for_https(app, user):
    alice = Client(app)
    alice.login("alice")
    response = alice.get("/profile", base_url="https://localhost")
    assert response.status_code == 200
    assert security_headers(response) == {
        **ALWAYS, "Content-Security-Policy": CSP.format(connect="'self' wss://localhost:6080"),
        "Strict-Transport-Security": "max-age=31536000", "Cache-Control": "no-store"}


def test_error_pages_and_redirects_carry_them_too(anon):
    for response in (anon.get("/no-such-page"), anon.get("/users/")):
        assert response.status_code in (404, 302)
        assert security_headers(response) == {
            **ALWAYS, "Content-Security-Policy": CSP.format(connect="'self' ws://localhost:6080")}


@pytest.mark.parametrize("base_url,host,proxy", [
    ("http://localhost", None, "ws://localhost:6080"),
    ("https://localhost", None, "wss://localhost:6080"),
    ("http://localhost", "cloud.example.org", "ws://cloud.example.org:6080"),
    ("https://localhost", "cloud.example.org:8443", "wss://cloud.example.org:6080"),
    ("http://localhost", "[::1]:5000", "ws://[::1]:6080"),
    ("http://localhost", "192.0.2.10:5000", "ws://192.0.2.10:6080"),
    ("http://localhost", "", "ws://localhost:6080"),  # a client that names no host
])
def test_pages_may_reach_the_console_proxy_on_the_host_they_came_from(anon, base_url, host,
                                                                       proxy):
    """Development: the proxy listens on its own port of the host the browser used."""
    headers = {"Host": host} if host is not None else {}
    response = anon.get("/login", base_url=base_url, headers=headers)
    assert response.headers["Content-Security-Policy"] == CSP.format(connect=f"'self' {proxy}")


@pytest.mark.parametrize("console_url,connect", [
    ("/websockify", "'self'"),  # behind Apache, on this site's own origin
    ("wss://console.example.org/websockify", "'self' wss://console.example.org"),
    ("ws://10.0.0.5:6080/websockify", "'self' ws://10.0.0.5:6080"),
])
def test_a_configured_console_address_is_the_one_allowed(app, anon, console_url, connect):
    app.config["CONSOLE_URL"] = console_url
    assert anon.get("/login").headers["Content-Security-Policy"] == CSP.format(connect=connect)


@pytest.mark.parametrize("base_url,console_url,expected", [
    ("https://localhost", "", "wss://localhost:6080/websockify"),
    ("http://localhost", "/websockify", "/websockify"),
])
def test_the_screen_page_opens_the_websocket_there(app, user, test_host, base_url, console_url,
                                                   expected):
    app.config["CONSOLE_URL"] = console_url
    with app.app_context():
        template = make_catalog(("h1", test_host))
        vm = make_vm(user.id, "mine", template.id, start=False)
    alice = Client(app)
    alice.login("alice")
    page = alice.get(f"/vms/{vm.id}/screen", base_url=base_url).get_data(as_text=True)
    assert f'"{expected}"' in page
