"""Where the login page sends a user back to (security.is_safe_next): a path on this
site, whatever a link made `?next=` say. Everything else goes to the VM list ("/")."""
from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.conftest import PASSWORD, Client


def after_login(app, target: str) -> str:
    client = Client(app)
    response = client.post(f"/login?next={quote(target, safe='')}",
                           {"username": "admin", "password": PASSWORD})
    assert response.status_code == 302
    return response.headers["Location"]


@pytest.mark.parametrize("target,expected", [
    ("/vms/7", "/vms/7"),
    ("/vms/?q=web 1", "/vms/?q=web%201"),     # a search with a space: still this site
    ("/users/?q=a~b!", "/users/?q=a~b!"),
    ("/" + "a" * 1999, "/" + "a" * 1999),     # 2,000 characters: the longest taken
])
def test_paths_on_this_site_are_followed(app, admin, target, expected):
    assert after_login(app, target) == expected


@pytest.mark.parametrize("target", [
    "/" + "a" * 2000,                          # 2,001 characters
    "//evil.example/",
    "///evil.example/",                        # browsers read it as //evil.example
    "/\\evil.example",
    "/vms/\\evil",                             # a backslash anywhere
    "/\t/evil.example",                        # browsers drop tabs: //evil.example
    "/\n/evil.example",
    "/vms/\x7f",
    "/vms/\x00",
    "https://evil.example/",
    "evil.example",
    "",
])
def test_anything_else_goes_to_the_vm_list(app, admin, target):
    assert after_login(app, target) == "/"
