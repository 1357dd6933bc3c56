"""Property-based tests (Hypothesis) of the forms: login, users, profile, settings, hosts,
images, templates (the VM forms: test_fuzz_vms.py; every route and the list filters:
test_fuzz_routes.py). Hostile text, unicode, control characters, XML metacharacters, path
tricks (symlinks included), huge and negative numbers, empty, missing and duplicated
fields.

For every example (tests/support/fuzz_web.py, submit): no 500, no traceback, a status
the app uses; when the request is refused (not a redirect, a form error, a danger flash,
or the login page) the database and the hosts (domains and volumes, read through the
app's own connections) are as they were. Accepted requests change state, and the next
example must work on top of it; but only a request that may be accepted ever is: a
forged, empty or missing CSRF token is 400 on every route, an administrator's form
posted by a user (ADMIN_OR_OTHER) and another user's VM are refused, the VM as 404
(check_authority). Examples run per form: test-artifacts/fuzz-counts.json."""
from __future__ import annotations

import json
from urllib.parse import urlencode

from hypothesis import example, given
from hypothesis import strategies as st

from loucloud.extensions import db
from loucloud.models import LoginAttempt, Setting
from loucloud.services import settings as settings_service
from loucloud.services.settings import SPECS
from tests.conftest import BASE_IMAGE, PASSWORD, Client
from tests.support.fuzz import (
    FUZZ,
    PATH_TRICKS,
    SAME,
    XML_TRICKS,
    Poster,
    counted,
    csrf_text,
    display_name_text,
    form_data,
    name_text,
    nasty_text,
    number_text,
    path_text,
    safe_uri,
)
from tests.support.fuzz_web import (  # noqa: F401 (world: a fixture)
    ADMIN_OR_OTHER,
    World,
    ints,
    submit,
    world,
)


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
    posters = world.posters("admin", "alice")
    with counted("web POST /users/new") as count:
        @FUZZ
        @given(who=ADMIN_OR_OTHER,
               items=form_data({**USER_FIELDS, "password": PASSWORDS, "confirm": SAME, **QUOTA},
                               same={"confirm": "password"}, hostile=QUOTA_BAD),
               csrf=csrf_text())
        def run(who, items, csrf):
            submit(world, posters[who], "/users/new", items, count, csrf=csrf)

        run()


def test_fuzz_user_edit(app, world):
    posters = world.posters("admin", "alice")
    targets = [world.ids[k] for k in ("alice", "bob", "carol", "admin")]
    with counted("web POST /users/<id>/edit") as count:
        @FUZZ
        @given(who=ADMIN_OR_OTHER,
               target=st.sampled_from(targets),
               items=form_data({**USER_FIELDS, **QUOTA}, hostile=QUOTA_BAD), csrf=csrf_text())
        def run(who, target, items, csrf):
            submit(world, posters[who], f"/users/{target}/edit", items, count, csrf=csrf)

        run()


def test_fuzz_user_password_reset(app, world):
    posters = world.posters("admin", "alice")
    targets = [world.ids[k] for k in ("alice", "bob", "carol")]
    with counted("web POST /users/<id>/password") as count:
        @FUZZ
        @given(who=ADMIN_OR_OTHER,
               target=st.sampled_from(targets),
               items=form_data({"password": PASSWORDS, "confirm": SAME},
                               same={"confirm": "password"}),
               csrf=csrf_text())
        @example(who="alice", target=world.ids["bob"],
                 items=[("password", "Pw-alice-9xZ"), ("confirm", "Pw-alice-9xZ")], csrf=None)
        def run(who, target, items, csrf):
            submit(world, posters[who], f"/users/{target}/password", items, count, csrf=csrf)

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
    posters = world.posters("admin", "alice")
    valid, hostile = _setting_strategies()
    with counted("web POST /settings/") as count:
        @FUZZ
        @given(who=ADMIN_OR_OTHER,
               items=form_data(valid, hostile=hostile), csrf=csrf_text())
        def run(who, items, csrf):
            submit(world, posters[who], "/settings/", items, count, csrf=csrf)

        run()
    with app.app_context():  # whatever was stored passes the service's own checks
        stored = {row.key: json.loads(row.value)
                  for row in db.session.execute(db.select(Setting)).scalars()}
        assert settings_service.validate(stored) == stored


# -- hosts -----------------------------------------------------------------------------
def test_fuzz_host_create(app, world):
    posters = world.posters("admin", "alice")
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
        @given(who=ADMIN_OR_OTHER,
               items=form_data(
                   {"name": display_name_text("_.-"), "uri": st.sampled_from(accepted)},
                   hostile={"uri": st.one_of(st.sampled_from(tricks), nasty_text(),
                                             st.builds(lambda a, b: a + b,
                                                       st.sampled_from(accepted + tricks),
                                                       nasty_text()))}),
               csrf=csrf_text())
        def run(who, items, csrf):  # no URI that reaches a real libvirtd or the network
            items = [(k, safe_uri(world.tmp)(v) if k == "uri" else v) for k, v in items]
            submit(world, posters[who], "/hosts/new", items, count, csrf=csrf)

        run()


# -- images ----------------------------------------------------------------------------
IMAGE_NAME = display_name_text(" _.()+-")  # and templates
OS = st.sampled_from(["linux", "windows"])


def test_fuzz_image_create(app, world):
    posters = world.posters("admin", "alice")
    with counted("web POST /images/new") as count:
        @FUZZ
        @given(who=ADMIN_OR_OTHER,
               items=form_data(
                   {"name": IMAGE_NAME,
                    "path": st.sampled_from([BASE_IMAGE, "/var/lib/images/base.raw"]),
                    "os_type": OS},
                   hostile={"path": path_text(world.symlinks)}),
               csrf=csrf_text())
        def run(who, items, csrf):
            submit(world, posters[who], "/images/new", items, count, csrf=csrf)

        run()


def test_fuzz_image_edit(app, world):
    posters = world.posters("admin", "alice")
    with counted("web POST /images/<id>/edit") as count:
        @FUZZ
        @given(who=ADMIN_OR_OTHER,
               items=form_data({"name": IMAGE_NAME, "os_type": OS}), csrf=csrf_text())
        @example(who="alice", items=[("name", "alices"), ("os_type", "windows")], csrf=None)
        @example(who="admin", items=[("name", "forged"), ("os_type", "windows")], csrf="x")
        def run(who, items, csrf):
            submit(world, posters[who], f"/images/{world.ids['image']}/edit", items, count,
                   csrf=csrf)

        run()


# -- templates -------------------------------------------------------------------------
def _template_fields(world: World):
    return ({"name": IMAGE_NAME, "image_id": st.just(str(world.ids["image"])),
             "vcpus": ints(1, 16), "memory_mib": ints(64, 65536), "disk_gib": ints(1, 500),
             "notes": st.text(max_size=200)},
            {"vcpus": number_text(1, 256), "memory_mib": number_text(64, 4 * 1024 * 1024),
             "disk_gib": number_text(0, 2), "image_id": number_text(0, 5)})


def test_fuzz_template_create(app, world):
    posters = world.posters("admin", "alice")
    valid, hostile = _template_fields(world)
    with counted("web POST /templates/new") as count:
        @FUZZ
        @given(who=ADMIN_OR_OTHER,
               items=form_data(valid, hostile=hostile), csrf=csrf_text())
        def run(who, items, csrf):
            submit(world, posters[who], "/templates/new", items, count, csrf=csrf)

        run()


def test_fuzz_template_edit(app, world):
    posters = world.posters("admin", "alice")
    valid, hostile = _template_fields(world)
    with counted("web POST /templates/<id>/edit") as count:
        @FUZZ
        @given(who=ADMIN_OR_OTHER,
               items=form_data(valid, hostile=hostile), csrf=csrf_text())
        def run(who, items, csrf):
            submit(world, posters[who], f"/templates/{world.ids['template']}/edit", items, count,
                   csrf=csrf)

        run()
