"""Property-based tests (Hypothesis) of every form, every route's path and query, and the
list filters: hostile text, unicode, control characters, XML metacharacters, path tricks
(symlinks included), huge and negative numbers, empty, missing and duplicated fields.

For every example: no 500, no traceback, a status the app uses; when the request is
refused (not a redirect, a form error, a danger flash, or the login page) the database
and the hosts (domains and volumes, read through the app's own connections) are as they
were. Accepted requests change state, and the next example must work on top of it.
Examples run per form: test-artifacts/fuzz-counts.json."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from werkzeug.routing import AnyConverter, IntegerConverter

from loucloud.extensions import db
from loucloud.models import VM, LoginAttempt, Host, Setting
from loucloud.services import settings as settings_service
from loucloud.services.vms import lifecycle as vm_service
from loucloud.services.settings import SPECS
from tests.conftest import BASE_IMAGE, PASSWORD, Client
from tests.factories import make_catalog, make_user, make_vm, write_test_node
from tests.support.fuzz import (
    EXAMPLES,
    FUZZ,
    INT64_MAX,
    NUMBER_TRICKS,
    PATH_TRICKS,
    SAME,
    XML_TRICKS,
    Poster,
    assert_fits_columns,
    assert_same,
    check_response,
    counted,
    csrf_text,
    form_data,
    host_state,
    host_uris,
    name_text,
    nasty_text,
    number_text,
    path_text,
    rejected,
    safe_uri,
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


def submit(world: World, poster: Poster, url: str, items, count, *, csrf=None,
           headers=None) -> tuple[object, str, bool]:
    """POST a form; check the response; when refused, check that nothing changed.
    Returns (response, body, refused)."""
    what = f"POST {url} {items!r}"[:3000]
    uris = world.uris()
    before = snapshot(world.app, uris)
    response = poster.post(url, items, csrf=csrf, headers=headers)
    count.examples += 1
    body = check_response(response, what)
    after = snapshot(world.app, uris)
    refused = rejected(poster.client, response, body)
    count.add(f"{response.status_code} {'refused' if refused else 'accepted'}")
    if refused:
        assert_same(before, after, what)
    else:
        assert_fits_columns(world.app, what)
    if poster.logged_out(response):
        poster.relogin()
    return response, body, refused


def ints(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(min_value=low, max_value=high).map(str)


PASSWORDS = st.builds(lambda s: f"Pw-{s}-9xZ", st.text(min_size=4, max_size=24))
EMAILS = st.one_of(st.emails(), st.sampled_from(["", "a@example.com", "x.y@sub.example.org"]))
QUOTA = {"max_vms": ints(0, 10_000), "max_vcpus": ints(0, 100_000),
         "max_memory_mib": ints(0, 100_000_000), "max_disk_gib": ints(0, 10_000_000)}
QUOTA_BAD = {k: number_text(0, 10) for k in QUOTA}
NEXT_TRICKS = ["//evil.example", "//evil.example/x", "/\\evil.example", "\\\\evil.example",
               "https://evil.example", "http:evil.example", "javascript:alert(1)",
               "/\t/evil.example", "/%2F%2Fevil.example", "///evil.example", " //evil.example",
               "/\x00//evil.example", "data:text/html,x", "/vms/1", "/users/", "/profile?a=b#c"]


# -- login -----------------------------------------------------------------------------
def test_fuzz_login(app, world):
    """Bad credentials, disabled users, injections, open redirects in ?next."""
    with counted("web POST /login") as count:
        @FUZZ
        @given(items=form_data(
                   {"username": st.sampled_from(["alice", "admin"]), "password": st.just(PASSWORD)},
                   hostile={"username": st.one_of(
                       st.sampled_from(["ALICE", " alice ", "carol", "nobody", "alice\x00",
                                        "admin'--", "a" * 65]), nasty_text())}),
               next_=st.one_of(st.none(), st.sampled_from(NEXT_TRICKS), nasty_text()),
               csrf=csrf_text())
        def run(items, next_, csrf):
            with app.app_context():  # the throttle would otherwise hide every later example
                db.session.execute(db.delete(LoginAttempt))
                db.session.commit()
            poster = Poster(Client(app), PASSWORD)
            url = "/login" + (f"?{urlencode({'next': next_})}" if next_ is not None else "")
            submit(world, poster, url, items, count, csrf=csrf)

        run()


# -- users -----------------------------------------------------------------------------
USER_FIELDS = {"username": name_text(max_len=20).filter(lambda s: len(s) >= 2),
               "full_name": st.text(max_size=40), "email": EMAILS}


def test_fuzz_user_create(app, world):
    admin = world.poster("admin")
    with counted("web POST /users/new") as count:
        @FUZZ
        @given(items=form_data({**USER_FIELDS, "password": PASSWORDS, "confirm": SAME, **QUOTA},
                               same={"confirm": "password"}, hostile=QUOTA_BAD),
               csrf=csrf_text())
        def run(items, csrf):
            submit(world, admin, "/users/new", items, count, csrf=csrf)

        run()


def test_fuzz_user_edit(app, world):
    admin = world.poster("admin")
    targets = [world.ids[k] for k in ("alice", "bob", "carol", "admin")]
    with counted("web POST /users/<id>/edit") as count:
        @FUZZ
        @given(target=st.sampled_from(targets),
               items=form_data({**USER_FIELDS, **QUOTA}, hostile=QUOTA_BAD), csrf=csrf_text())
        def run(target, items, csrf):
            submit(world, admin, f"/users/{target}/edit", items, count, csrf=csrf)

        run()


def test_fuzz_user_password_reset(app, world):
    admin = world.poster("admin")
    targets = [world.ids[k] for k in ("alice", "bob", "carol")]
    with counted("web POST /users/<id>/password") as count:
        @FUZZ
        @given(target=st.sampled_from(targets),
               items=form_data({"password": PASSWORDS, "confirm": SAME},
                               same={"confirm": "password"}),
               csrf=csrf_text())
        def run(target, items, csrf):
            submit(world, admin, f"/users/{target}/password", items, count, csrf=csrf)

        run()


CURRENT = "\ue000current password\ue000"  # replaced by the password of the moment


def test_fuzz_profile_password(app, world):
    """A user changes his own password; accepted changes are followed."""
    alice = world.poster("alice")
    with counted("web POST /profile") as count:
        @FUZZ
        @given(items=form_data({"current_password": st.just(CURRENT), "password": PASSWORDS,
                                "confirm": SAME}, same={"confirm": "password"}),
               csrf=csrf_text())
        def run(items, csrf):
            items = [(k, alice.password if v == CURRENT else v) for k, v in items]
            _, _, refused = submit(world, alice, "/profile", items, count, csrf=csrf)
            if not refused:  # the form reads the first value of a repeated field
                alice.password = next(v for k, v in items if k == "password")

        run()
    assert Client(app).login("alice", alice.password).status_code == 302


# -- settings --------------------------------------------------------------------------
IP_TRICKS = ["0.0.0.0", "::", "0::0", "::0.0.0.0", "224.0.0.1", "ff02::1", "127.1", "[::1]",
             "::1%lo", "1.2.3.4/24", "1.2.3.4:5900", "localhost", "AUTO", " auto", "auto\n"]


def _setting_strategies():
    valid, hostile = {}, {}
    for spec in SPECS:
        if spec.kind is int:
            valid[spec.key] = ints(spec.minimum, spec.maximum)
            hostile[spec.key] = number_text(spec.minimum, spec.maximum)
        elif spec.key == "vnc_listen":
            valid[spec.key] = st.sampled_from(["auto", "127.0.0.1", "::1", "10.1.2.3", "fe80::1"])
            hostile[spec.key] = st.one_of(st.sampled_from(IP_TRICKS), nasty_text())
        else:
            valid[spec.key] = name_text(max_len=30)
            hostile[spec.key] = st.one_of(st.sampled_from(PATH_TRICKS + XML_TRICKS), nasty_text())
    return valid, hostile


def test_fuzz_settings(app, world):
    admin = world.poster("admin")
    valid, hostile = _setting_strategies()
    with counted("web POST /settings/") as count:
        @FUZZ
        @given(items=form_data(valid, hostile=hostile), csrf=csrf_text())
        def run(items, csrf):
            submit(world, admin, "/settings/", items, count, csrf=csrf)

        run()
    with app.app_context():  # whatever was stored passes the service's own checks
        stored = {row.key: json.loads(row.value)
                  for row in db.session.execute(db.select(Setting)).scalars()}
        assert settings_service.validate(stored) == stored


# -- hosts -----------------------------------------------------------------------------
def test_fuzz_host_create(app, world):
    admin = world.poster("admin")
    accepted = ["test:///default"] + [f"test://{p}" for p in world.node_files] + \
        [f"test://{world.tmp}/node-link.xml"]
    tricks = ["test:///etc/passwd", f"test://{world.symlinks[0]}", f"test://{world.tmp}/escape",
              "test:///nonexistent.xml", f"test://{world.tmp}/../../etc/passwd", "test:relative",
              f"qemu+unix:///system?socket={world.dead_socket}",
              f"qemu+unix:///session?socket={world.tmp}/escape/passwd", "qemu:///system/../x",
              "qemu+ssh://root@h1/other", "http://evil.example/system", "test:///default\n",
              " test:///default ", "test:///default?a=<b>&c='", "test:///default#x",
              "test+tcp://x/default", "qemu+ext:///system?command=/bin/sh", "file:///etc/passwd",
              "TEST:///default", "test:///" + "a" * 300, "test://" + world.host[7:] + "/"]
    with counted("web POST /hosts/new") as count:
        @FUZZ
        @given(items=form_data(
                   {"name": name_text(max_len=20), "uri": st.sampled_from(accepted)},
                   hostile={"uri": st.one_of(st.sampled_from(tricks), nasty_text(),
                                             st.builds(lambda a, b: a + b,
                                                       st.sampled_from(accepted + tricks),
                                                       nasty_text()))}),
               csrf=csrf_text())
        def run(items, csrf):  # no URI that reaches a real libvirtd or the network
            items = [(k, safe_uri(world.tmp)(v) if k == "uri" else v) for k, v in items]
            submit(world, admin, "/hosts/new", items, count, csrf=csrf)

        run()


# -- images ----------------------------------------------------------------------------
IMAGE_NAME = name_text("A-Za-z0-9 _.()+-", max_len=20)
OS = st.sampled_from(["linux", "windows"])


def test_fuzz_image_create(app, world):
    admin = world.poster("admin")
    with counted("web POST /images/new") as count:
        @FUZZ
        @given(items=form_data(
                   {"name": IMAGE_NAME,
                    "path": st.sampled_from([BASE_IMAGE, "/var/lib/images/base.raw"]),
                    "os_type": OS},
                   hostile={"path": path_text(world.symlinks)}),
               csrf=csrf_text())
        def run(items, csrf):
            submit(world, admin, "/images/new", items, count, csrf=csrf)

        run()


def test_fuzz_image_edit(app, world):
    admin = world.poster("admin")
    with counted("web POST /images/<id>/edit") as count:
        @FUZZ
        @given(items=form_data({"name": IMAGE_NAME, "os_type": OS}), csrf=csrf_text())
        def run(items, csrf):
            submit(world, admin, f"/images/{world.ids['image']}/edit", items, count, csrf=csrf)

        run()


# -- templates -------------------------------------------------------------------------
def _template_fields(world: World):
    return ({"name": IMAGE_NAME, "image_id": st.just(str(world.ids["image"])),
             "vcpus": ints(1, 16), "memory_mib": ints(64, 65536), "disk_gib": ints(1, 500),
             "notes": st.text(max_size=200)},
            {"vcpus": number_text(1, 256), "memory_mib": number_text(64, 4 * 1024 * 1024),
             "disk_gib": number_text(0, 2), "image_id": number_text(0, 5)})


def test_fuzz_template_create(app, world):
    admin = world.poster("admin")
    valid, hostile = _template_fields(world)
    with counted("web POST /templates/new") as count:
        @FUZZ
        @given(items=form_data(valid, hostile=hostile), csrf=csrf_text())
        def run(items, csrf):
            submit(world, admin, "/templates/new", items, count, csrf=csrf)

        run()


def test_fuzz_template_edit(app, world):
    admin = world.poster("admin")
    valid, hostile = _template_fields(world)
    with counted("web POST /templates/<id>/edit") as count:
        @FUZZ
        @given(items=form_data(valid, hostile=hostile), csrf=csrf_text())
        def run(items, csrf):
            submit(world, admin, f"/templates/{world.ids['template']}/edit", items, count,
                   csrf=csrf)

        run()


# -- VMs -------------------------------------------------------------------------------
VM_NAME = name_text("A-Za-z0-9._-", "A-Za-z0-9._-", max_len=20)


def test_fuzz_vm_create(app, world):
    posters = {"alice": world.poster("alice"), "admin": world.poster("admin")}
    with counted("web POST /vms/new") as count:
        @FUZZ
        @given(who=st.sampled_from(sorted(posters)),
               items=form_data({"name": VM_NAME, "template_id": st.just(str(world.ids["template"])),
                                "host_id": st.sampled_from(["0", str(world.ids["host"])]),
                                "start": st.sampled_from(["y", "on", "1", "false", ""])},
                               hostile={"template_id": number_text(0, 5),
                                        "host_id": number_text(0, 5),
                                        "name": st.one_of(st.sampled_from(
                                            ["a b", "../etc", "a</name><devices>", "x" * 65,
                                             "é", "a1", " a1 ", "a1\n"]), nasty_text())}),
               csrf=csrf_text())
        def run(who, items, csrf):
            submit(world, posters[who], "/vms/new", items, count, csrf=csrf)

        run()


def _id_text(world: World) -> st.SearchStrategy[str]:
    """Ids of existing rows (mostly), any 64-bit number, and text that is no id (larger
    numbers among them; more in test_huge_ids_in_urls_are_404_not_500)."""
    known = st.sampled_from(sorted({str(i) for i in world.ids.values()} |
                                   {str(i) for i in world.vm_ids}))
    return weighted((6, known), (1, st.sampled_from(["0", "999999", str(INT64_MAX)])),
                    (1, st.integers(min_value=0, max_value=INT64_MAX).map(str)),
                    (1, st.sampled_from(["-1", "1.0", "0x1", "01", "１", "1 ", "%31"])),
                    (1, nasty_text()))


def _path_segment(text: str) -> str:
    return quote(text, safe="") if text != "" else ""


def test_fuzz_vm_actions(app, world):
    """POST /vms/<id>/<action>, /console, /delete with any id and action, as owner,
    other user and administrator, HTML and JSON."""
    posters = {"alice": world.poster("alice"), "bob": world.poster("bob"),
               "admin": world.poster("admin")}
    actions = list(vm_service.ACTIONS) + ["delete", "console", "screen"]
    vm_ids = st.sampled_from([str(i) for i in world.vm_ids])
    with counted("web POST /vms/<id>/<action>") as count:
        @FUZZ
        @given(who=st.sampled_from(sorted(posters)),
               vm_id=weighted((7, vm_ids), (3, _id_text(world))),
               action=weighted((8, st.sampled_from(actions)), (2, nasty_text())),
               as_json=st.booleans(), csrf=csrf_text(),
               items=st.lists(st.tuples(st.sampled_from(["action", "vm_id", "x"]), nasty_text()),
                              max_size=2))
        def run(who, vm_id, action, as_json, csrf, items):
            url = f"/vms/{_path_segment(vm_id)}/{_path_segment(action)}"
            headers = {"Accept": "application/json"} if as_json else None
            submit(world, posters[who], url, items, count, csrf=csrf, headers=headers)

        run()


# -- every route, with any path arguments and query ------------------------------------
PLACEHOLDER = re.compile(r"<(?:(?P<conv>[^:>]+):)?(?P<name>\w+)>")


def _routes(app):
    return sorted((r for r in app.url_map.iter_rules()
                   if r.endpoint not in ("auth.login", "auth.logout")),
                  key=lambda r: (r.rule, sorted(r.methods)))


def test_fuzz_every_route(app, world):
    """Every rule of the URL map (a new route is covered by itself) with arbitrary path
    arguments, query strings and bodies, by anonymous visitors, users and the
    administrator. A GET never writes anything; a refused POST writes nothing."""
    posters = {"alice": world.poster("alice"), "bob": world.poster("bob"),
               "admin": world.poster("admin"), "anonymous": Poster(Client(app), PASSWORD)}
    rules = _routes(app)

    @st.composite
    def requests(draw):
        rule = draw(st.sampled_from(rules))
        methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
        method = draw(st.sampled_from(methods))
        values = {}
        for arg in rule.arguments:
            conv = rule._converters[arg]
            if isinstance(conv, IntegerConverter):
                values[arg] = draw(_id_text(world))
            elif isinstance(conv, AnyConverter):
                values[arg] = draw(st.one_of(st.sampled_from(sorted(conv.items)), nasty_text()))
            else:
                values[arg] = draw(st.one_of(
                    path_text(world.symlinks),
                    st.sampled_from(["app.css", "../config.py", "..%2fconfig.py",
                                     "vendor/../app.js"])))
        url = PLACEHOLDER.sub(lambda m: quote(values[m["name"]], safe="/")
                              if (m["conv"] or "").startswith("path")
                              else _path_segment(values[m["name"]]), rule.rule)
        query = draw(st.lists(st.tuples(st.sampled_from(["q", "page", "next", "owner", "state",
                                                         "host", "role", "status", "ids",
                                                         "range", "x"]),
                                        nasty_text()), max_size=3))
        if query:
            url += "?" + urlencode(query)
        body = draw(st.lists(st.tuples(st.sampled_from(["accepts", "password", "confirm",
                                                        "name", "x"]), nasty_text()), max_size=3))
        return method, url, body, rule.endpoint

    with counted("web any route, any path/query") as count:
        @settings(FUZZ, max_examples=3 * EXAMPLES)
        @given(who=st.sampled_from(sorted(posters)), request=requests(), csrf=csrf_text(),
               as_json=st.booleans())
        def run(who, request, csrf, as_json):
            method, url, body, endpoint = request
            poster = posters[who]
            headers = {"Accept": "application/json"} if as_json else None
            if method == "POST":
                submit(world, poster, url, body, count, csrf=csrf, headers=headers)
                return
            uris = world.uris()
            before = snapshot(app, uris)
            count.examples += 1
            response = poster.get(url, headers=headers or {})
            check_response(response, f"GET {url} as {who}")
            count.add(f"GET {response.status_code}")
            assert_same(before, snapshot(app, uris), f"GET {url} ({endpoint}) as {who}")

        run()


# -- list filters ----------------------------------------------------------------------
STATES = ["running", "paused", "shut off", "crashed", "missing", "host offline", "starting…"]


def _get_filters(world, poster, path, params, count, what):
    uris = world.uris()
    before = snapshot(world.app, uris)
    url = f"{path}?{urlencode(params)}"
    count.examples += 1
    response = poster.get(url)
    check_response(response, f"{what} {url}")
    assert response.status_code == 200, f"GET {url}: {response.status_code}"
    count.add(str(response.status_code))
    assert_same(before, snapshot(world.app, uris), f"GET {url}")


PAGES = st.one_of(ints(-5, 5),
                  st.integers(min_value=-(2 ** 63), max_value=PAGE_LIMIT).map(str),
                  st.sampled_from(NUMBER_TRICKS), nasty_text())


@st.composite
def _params(draw, fields: dict[str, st.SearchStrategy]) -> list[tuple[str, str]]:
    """Query parameters in any order, some missing, some repeated."""
    keys = draw(st.lists(st.sampled_from(sorted(fields)), max_size=6))
    return [(k, draw(fields[k])) for k in keys]


def test_fuzz_vm_list_filters(app, world):
    posters = {"alice": world.poster("alice"), "admin": world.poster("admin")}
    ids = st.one_of(_id_text(world), st.just(""))
    fields = {"q": st.one_of(st.sampled_from(["a", "%", "_", "a1", "'", "\\"]), nasty_text()),
              "state": st.one_of(st.sampled_from(STATES), nasty_text()),
              "owner": ids, "host": ids, "page": PAGES}
    with counted("web GET /?q&state&owner&host&page") as count:
        @FUZZ
        @given(who=st.sampled_from(sorted(posters)), params=_params(fields))
        def run(who, params):
            _get_filters(world, posters[who], "/", params, count, who)

        run()


def test_fuzz_user_list_filters(app, world):
    admin = world.poster("admin")
    fields = {"q": st.one_of(st.sampled_from(["a", "%", "_", "alice", "@", "'"]), nasty_text()),
              "role": st.one_of(st.sampled_from(["", "admin", "user"]), nasty_text()),
              "status": st.one_of(st.sampled_from(["", "active", "disabled"]), nasty_text()),
              "page": PAGES}
    with counted("web GET /users/?q&role&status&page") as count:
        @FUZZ
        @given(params=_params(fields))
        def run(params):
            _get_filters(world, admin, "/users/", params, count, "admin")

        run()


# -- bugs these tests found once (fixed): each keeps its own test ----------------------
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


MAPPED_ANY = ["::ffff:0.0.0.0", "::ffff:0:0", "0:0:0:0:0:ffff:0:0", "::FFFF:0000:0000",
              "0000:0000:0000:0000:0000:ffff:0.0.0.0"]


def test_vnc_listen_never_every_address(app, world):
    admin = world.poster("admin")
    valid = {spec.key: str(spec.default) for spec in SPECS}
    with counted("web POST /settings/ vnc_listen=any-address") as count:
        @FUZZ
        @given(address=st.sampled_from(MAPPED_ANY))
        @example(address="::ffff:0.0.0.0")
        def run(address):
            items = list({**valid, "vnc_listen": address}.items())
            _, body, refused = submit(world, admin, "/settings/", items, count)
            assert refused and "is-invalid" in body, f"vnc_listen={address!r} accepted"

        run()


def test_refused_image_path_leaves_no_pool_on_the_hosts(app, world):
    admin = world.poster("admin")
    with counted("web POST /images/new host pools") as count:
        @FUZZ
        @given(path=path_text(world.symlinks))
        @example(path="/nonexistent/x.qcow2")
        def run(path):
            uris = world.uris()
            before = host_state(app, uris)
            _, _, refused = submit(world, admin, "/images/new",
                                   [("name", "probe"), ("path", path), ("os_type", "linux")],
                                   count)
            if refused:
                after = host_state(app, uris)
                assert {u: s["pools"] for u, s in before.items()} == \
                    {u: s["pools"] for u, s in after.items()}, f"{path!r}: a pool was left"

        run()


def test_refused_vm_action_keeps_the_error_of_the_vm(app, world):
    alice = world.poster("alice")
    running = world.vm_ids[0]
    with app.app_context():
        vm = db.session.get(VM, running)
        vm.status, vm.last_error = VM.ERROR, "Delete did not finish: host gone"
        db.session.commit()
    with counted("web POST /vms/<id>/<action> on a VM in error") as count:
        for action, as_json in (("start", True), ("resume", False)):
            _, _, refused = submit(
                world, alice, f"/vms/{running}/{action}", [], count,
                headers={"Accept": "application/json"} if as_json else None)
            assert refused


def test_refused_host_uri_shows_no_file_content(app, world, tmp_path):
    admin = world.poster("admin")
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-LINE-42 not for anybody\n")
    (tmp_path / "secret-link").symlink_to(secret)
    with counted("web POST /hosts/new test:///<a file>") as count:
        for uri in [f"test://{secret}", f"test://{tmp_path}/secret-link"]:
            _, body, refused = submit(world, admin, "/hosts/new",
                                      [("name", "x1"), ("uri", uri)], count)
            assert refused and "SECRET-LINE-42" not in body, f"{uri}: the file's line is shown"
