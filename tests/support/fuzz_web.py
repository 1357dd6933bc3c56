"""The world of the web fuzz tests (tests/test_fuzz_forms.py, test_fuzz_vms.py,
test_fuzz_routes.py and the regressions they found, kept with their features): users,
a host with an image, a template and VMs, hostile paths; and `submit`, which posts one
example and checks it, authorization included (tests/support/fuzz.py has the
strategies and the other checks)."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import pytest
from flask import request_started
from hypothesis import strategies as st

from loucloud.extensions import db
from loucloud.models import VM, Host, Task
from tests.conftest import BASE_IMAGE, PASSWORD, Client
from tests.factories import make_catalog, make_user, make_vm, write_test_node
from tests.support.fuzz import (
    INT64_MAX,
    Poster,
    assert_fits_columns,
    assert_same,
    check_response,
    host_uris,
    nasty_text,
    rejected,
    snapshot,
    weighted,
)


# The last page whose offset a 64-bit integer holds (50 rows a page).
PAGE_LIMIT = INT64_MAX // 50


@dataclass
class World:
    app: object
    host: str
    ids: dict[str, int]
    vm_ids: list[int]
    symlinks: list[str]
    node_files: list[str]
    dead_socket: str
    tmp: str

    def uris(self) -> set[str]:
        return host_uris(self.app, [self.host])

    def poster(self, username: str, password: str = PASSWORD) -> Poster:
        client = Client(self.app)
        assert client.login(username, password).status_code == 302
        return Poster(client, password)

    def posters(self, *usernames: str) -> dict[str, Poster]:
        return {name: self.poster(name) for name in usernames}


# Who posts an administrator's form: mostly the administrator (the form's own checks),
# sometimes a user, who must be refused whatever the form holds.
ADMIN_OR_OTHER = weighted((4, st.just("admin")), (1, st.just("alice")))


@pytest.fixture
def world(app, test_host, tmp_path) -> World:
    """Admin, alice and bob (active), carol (disabled); host h1 with image base and
    template small; VMs a1 (running) and a2 (shut off) of alice, b1 of bob. Symlinks in
    tmp_path that lead outside it, node files for new hosts, a socket path nobody
    listens on."""
    with app.app_context():
        admin = make_user("admin", is_admin=True)
        alice = make_user("alice")
        bob = make_user("bob")
        carol = make_user("carol", active=False)
        template = make_catalog(("h1", test_host))
        vms = [make_vm(alice.id, "a1", template.id),
               make_vm(alice.id, "a2", template.id, start=False),
               make_vm(bob.id, "b1", template.id)]
        host_id = db.session.execute(db.select(Host.id)).scalar()
    (tmp_path / "escape").symlink_to("/etc")                 # a directory outside
    (tmp_path / "image-link.qcow2").symlink_to(BASE_IMAGE)   # a file link to the image
    (tmp_path / "up").symlink_to("..")
    symlinks = [str(tmp_path / "escape" / "passwd"), str(tmp_path / "escape"),
                str(tmp_path / "image-link.qcow2"), str(tmp_path / "up" / "up" / "etc" / "passwd"),
                str(tmp_path / "escape" / ".." / "etc" / "passwd")]
    nodes = [write_test_node(tmp_path / f"new{i}.xml", pools={"images": "/var/lib/images"})
             for i in range(2)]
    (tmp_path / "node-link.xml").symlink_to(tmp_path / "new0.xml")
    return World(app, test_host,
                 {"admin": admin.id, "alice": alice.id, "bob": bob.id, "carol": carol.id,
                  "host": host_id, "image": template.image_id, "template": template.id},
                 [vm.id for vm in vms], symlinks, [n[len("test://"):] for n in nodes],
                 str(tmp_path / "dead.sock"), str(tmp_path))


# -- who may have a POST accepted --------------------------------------------------------
# The authorization the fuzz tests hold every accepted POST to (any other endpoint is the
# administrator's): a request that is accepted (or changes anything) for anybody else, or
# with a forged, empty or missing CSRF token, fails the example.
ANYBODY = {"auth.login"}
ANY_USER = {"auth.logout", "users.profile", "vms.create"}
OWNER_OR_ADMIN = {"vms.act", "vms.delete", "vms.console", "vms.serial", "vms.reset_password",
                  "vms.insert_media", "vms.eject_media"}
TASK_OWNER_OR_ADMIN = {"tasks.cancel", "tasks.retry", "api_tasks.cancel_task",
                       "api_tasks.retry_task"}


@dataclass(frozen=True)
class Seen:
    """How the app saw a request: its route and the user of its session."""
    endpoint: str | None  # None: no route (404, 405, a redirect to the canonical URL)
    args: dict
    user_id: int | None   # None: anonymous
    is_admin: bool = False


def _watch(seen: list[Seen]):
    def receiver(_app, **_extra):
        from flask import request
        from flask_login import current_user
        user = current_user if current_user.is_authenticated else None
        seen.append(Seen(request.endpoint, dict(request.view_args or {}),
                         user.id if user else None, bool(user and user.is_admin)))
    return receiver


def vm_owners(app) -> dict:
    """VM id -> its owner's id, and ("task", id) -> the task owner's id."""
    with app.app_context():
        owners = dict(db.session.execute(db.select(VM.id, VM.owner_id)).all())
        owners.update({("task", task_id): owner for task_id, owner in db.session.execute(
            db.select(Task.id, Task.owner_id)).all()})
        db.session.remove()
    return owners


def may_post(seen: Seen, owners: dict[int, int]) -> bool:
    """Whether this POST may be accepted at all (valid CSRF token assumed)."""
    if seen.endpoint is None:
        return False
    if seen.endpoint in ANYBODY:
        return True
    if seen.user_id is None:
        return False
    if seen.endpoint in ANY_USER or seen.is_admin:
        return True
    if seen.endpoint in OWNER_OR_ADMIN:
        return owners.get(seen.args.get("vm_id")) == seen.user_id
    if seen.endpoint in TASK_OWNER_OR_ADMIN:
        return owners.get(("task", seen.args.get("task_id"))) == seen.user_id
    return False


def check_authority(seen: Seen, owners: dict[int, int], csrf: str | None, response,
                    body: str, refused: bool, what: str) -> None:
    """A forged, empty or missing CSRF token is refused (400) before anything else on
    every route (an anonymous API call: 401, a token is asked for first); only someone who may is ever accepted; someone else's VM is 404 (its
    existence is not told), whatever the action."""
    forged = csrf is not None
    api_anonymous = (seen.endpoint or "").startswith("api_") and seen.user_id is None
    if forged and api_anonymous:
        # no session cookie, so no authority a forged page could borrow: the API asks for
        # a token (401) before any CSRF check, which only guards cookie-authenticated writes
        assert response.status_code == 401, \
            f"{what}: anonymous API call with csrf_token={csrf!r} not refused: " \
            f"{response.status_code}"
    elif forged and seen.endpoint is not None and response.status_code != 413:  # too large
        assert response.status_code == 400 and "form has expired" in body, \
            f"{what}: csrf_token={csrf!r} not refused: {response.status_code}"
    if not refused:
        assert not forged, f"{what}: accepted with csrf_token={csrf!r}"
        assert may_post(seen, owners), \
            f"{what}: accepted for user {seen.user_id} (admin: {seen.is_admin}), who may not"
    vm_owner = owners.get(seen.args.get("vm_id"))
    if seen.endpoint in OWNER_OR_ADMIN and not forged and seen.user_id is not None \
            and not seen.is_admin and vm_owner not in (None, seen.user_id):
        assert response.status_code == 404, \
            f"{what}: user {seen.user_id} got {response.status_code} on the VM of " \
            f"user {vm_owner}, not 404"


def submit(world: World, poster: Poster, url: str, items, count, *, csrf=None,
           headers=None) -> tuple[object, str, bool]:
    """POST a form; check the response; when refused, check that nothing changed; check
    who was accepted (check_authority). Returns (response, body, refused)."""
    what = f"POST {url} {items!r} as {poster.client.username or 'anonymous'}"[:3000]
    uris = world.uris()
    before = snapshot(world.app, uris)
    owners = vm_owners(world.app)
    seen: list[Seen] = []
    with request_started.connected_to(_watch(seen), world.app):
        response = poster.post(url, items, csrf=csrf, headers=headers)
    count.examples += 1
    body = check_response(response, what)
    after = snapshot(world.app, uris)
    refused = rejected(poster.client, response, body)
    count.add(f"{response.status_code} {'refused' if refused else 'accepted'}")
    check_authority(seen[0], owners, csrf, response, body, refused, what)
    if refused:
        assert_same(before, after, what)
    else:
        assert_fits_columns(world.app, what)
    if poster.logged_out(response):
        poster.relogin()
    return response, body, refused


def ints(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(min_value=low, max_value=high).map(str)


def id_text(world: World) -> st.SearchStrategy[str]:
    """Ids of existing rows (mostly), any 64-bit number, and text that is no id (larger
    numbers among them; more in test_huge_ids_in_urls_are_404_not_500)."""
    known = st.sampled_from(sorted({str(i) for i in world.ids.values()} |
                                   {str(i) for i in world.vm_ids}))
    return weighted((6, known), (1, st.sampled_from(["0", "999999", str(INT64_MAX)])),
                    (1, st.integers(min_value=0, max_value=INT64_MAX).map(str)),
                    (1, st.sampled_from(["-1", "1.0", "0x1", "01", "１", "1 ", "%31"])),
                    (1, nasty_text()))


def path_segment(text: str) -> str:
    return quote(text, safe="") if text != "" else ""
