"""Every service's own validation, through the command line.

On the pages, the forms' validators (regexes, lengths, number ranges) refuse bad input
before a service sees it, so the services' checks are never the ones that answer there.
The command line has no such layer: `manage.py <group> <command>` hands its arguments to
the service as they are. Each row below is refused by the service itself: exit code 1,
one line `error: <the service's message>` on stderr (nothing on stdout), nothing created
(every table but the audit log, and the domains and volumes on the host, as before),
and one audit event for the command with the result "refused".

Arguments come after `--`, so that a name starting with '-' reaches the service."""
from __future__ import annotations

import getpass

import pytest

from loucloud.extensions import db
from loucloud.models import AuditEvent
from loucloud.services import images as image_service
from tests.conftest import BASE_IMAGE
from tests.factories import make_catalog, make_user
from tests.support.fuzz import assert_same, snapshot

PASSWORD = "a good password 1"
# Login names stay ASCII: all of these are refused as user names.
NOT_ASCII = ["é", "ünïcode", "ｗｅｂ１", "web١", "we\u200bb", "\u202eevil"]
# Display names take any language (services/names.py: é, ｗｅｂ１ stored as web1, web١);
# what they still refuse, whatever the kind, with its own message.
INVISIBLE = "Names may not hold control or invisible characters; this one holds U+"
LOOK_ALIKE = "letters that look alike"
NOT_NAMES = [("we\u200bb", INVISIBLE), ("\u202eevil", INVISIBLE), ("a\x00b", INVISIBLE),
             ("a\nb", INVISIBLE), ("p\u0430ypal", LOOK_ALIKE), ("web\u06f1", LOOK_ALIKE)]


def with_message(names: list[str], message: str) -> list[tuple[str, str]]:
    return [(name, message) for name in names] + NOT_NAMES


def make_world(app, uri: str) -> dict:
    """admin and carol; host h1; images base (qcow2, 1 GiB) and raw (raw, 2 GiB);
    template small on base."""
    with app.app_context():
        make_user("admin", is_admin=True)
        make_user("carol")
        make_catalog(("h1", uri))
        image_service.add_image("raw", "/var/lib/images/base.raw", "linux")
    return {"app": app, "host": uri}


@pytest.fixture
def world(app, test_host, monkeypatch):
    """make_world, and a password for `users create` in the environment."""
    monkeypatch.setenv("LOUCLOUD_USER_PASSWORD", PASSWORD)
    return make_world(app, test_host)


def run(world, args: list[str], *, env: dict | None = None):
    return world["app"].test_cli_runner().invoke(args=args, env=env)


def _events(app) -> list[AuditEvent]:
    with app.app_context():
        events = db.session.execute(db.select(AuditEvent).order_by(AuditEvent.id)).scalars().all()
        db.session.expunge_all()
        return events


def refused(world, args: list[str], message: str, action: str, target: str, *,
            env: dict | None = None) -> None:
    """Run the command; check the refusal, that nothing changed, and its audit event."""
    app = world["app"]
    before, events = snapshot(app, {world["host"]}), len(_events(app))
    result = run(world, args, env=env)
    assert result.exit_code == 1, (args, result.output)
    assert isinstance(result.exception, SystemExit)  # not an uncaught error
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.endswith("\n")
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert message in result.stderr, result.stderr
    assert_same(before, snapshot(app, {world["host"]}), f"{args!r}")
    new = _events(app)[events:]
    assert [(e.action, e.result, e.target, e.address) for e in new] == \
        [(action, "refused", target[:128], "cli")]
    assert new[0].username == f"cli:{getpass.getuser()}"


def ids(rows):
    return [repr(r[0])[:40] if isinstance(r, tuple) else repr(r)[:40] for r in rows]


# -- VMs ---------------------------------------------------------------------------------
VM_NAME_MESSAGE = "Use 1 to 64 letters (of any language), digits, '-', '_' or '.'."
BAD_VM_NAMES = with_message(["<x>", "a b", "../etc", "", " ", "x" * 65, "a/b",
                             "a</name><devices>", "it's", "a&b", "😀"], VM_NAME_MESSAGE)


@pytest.mark.parametrize("name,message", BAD_VM_NAMES, ids=ids(BAD_VM_NAMES))
def test_vm_names(world, name, message):
    refused(world, ["vms", "create", "--owner=carol", "--template=small", "--", name],
            message, "vms.create", name)


VM_REFUSALS = [
    (["--owner=nobody", "--template=small", "--", "v1"], "There is no user named nobody."),
    (["--owner=carol", "--template=nope", "--", "v1"], "There is no template named nope."),
    (["--owner=carol", "--template=small", "--host=h9", "--", "v1"],
     "There is no host named h9."),
]


@pytest.mark.parametrize("args,message", VM_REFUSALS, ids=["owner", "template", "host"])
def test_vm_create_names_what_does_not_exist(world, args, message):
    refused(world, ["vms", "create"] + args, message, "vms.create", "v1")


@pytest.mark.parametrize("action", ["start", "poweroff", "delete"])
@pytest.mark.parametrize("owner,name", [("carol", "nothing"), ("nobody", "x"),
                                        ("carol", "%"), ("admin", "_")])
def test_vm_actions_on_what_does_not_exist(world, action, owner, name):
    refused(world, ["vms", action, f"--owner={owner}", "--", name],
            f"{owner} has no VM named {name}.", f"vms.{action}", name)


# -- hosts -------------------------------------------------------------------------------
HOST_NAME_MESSAGE = ("Use 1 to 64 letters (of any language), digits, '.', '_' or '-', "
                     "starting with a letter or digit.")
BAD_HOST_NAMES = with_message(["<x>", "a b", "../etc", "", " ", "x" * 65, ".hidden", "_x",
                               "-x", "a/b", "-主机"], HOST_NAME_MESSAGE)


@pytest.mark.parametrize("name,message", BAD_HOST_NAMES, ids=ids(BAD_HOST_NAMES))
def test_host_names(world, name, message):
    refused(world, ["hosts", "add", "--", name, "test:///default"], message,
            "hosts.add", name)


ANY_URI = "Enter a libvirt URI such as qemu+tcp://10.0.0.5/system."
SCHEME = "Use a qemu URI"
QEMU_PATH = "A qemu URI ends in /system (or /session)."
BAD_URIS = [
    ("", ANY_URI), (" ", ANY_URI), ("test:///default x", ANY_URI),
    ("test:///default\x00", ANY_URI), ("test:///" + "a" * 300, ANY_URI),
    ("relative", SCHEME), ("/etc/passwd", SCHEME), ("http://evil.example/system", SCHEME),
    ("file:///etc/passwd", SCHEME), ("qemu+ext:///system?command=/bin/sh", SCHEME),
    ("test+tcp://x/default", SCHEME),
    ("qemu:///other", QEMU_PATH), ("qemu+ssh://root@h1/other", QEMU_PATH),
    ("qemu:///system/../x", QEMU_PATH), ("qemu+tcp://10.0.0.5/", QEMU_PATH),
    ("test:///nonexistent.xml", "Could not connect to test:///nonexistent.xml"),
    ("test:///etc/passwd", "Could not connect to test:///etc/passwd"),
    # check_uri reads the scheme case-blind (urlsplit); libvirt does not.
    ("TEST:///default", "Could not connect to TEST:///default: no connection driver"),
]


@pytest.mark.parametrize("uri,message", BAD_URIS, ids=ids(BAD_URIS))
def test_host_uris(world, uri, message):
    refused(world, ["hosts", "add", "--", "h2", uri], message, "hosts.add", "h2")


def test_host_twice(world):
    refused(world, ["hosts", "add", "--", "h1", "test:///default"],
            "A host with this name exists.", "hosts.add", "h1")
    refused(world, ["hosts", "add", "--", "h2", world["host"]],
            "This host is already in the pool.", "hosts.add", "h2")


# -- images ------------------------------------------------------------------------------
IMAGE_NAME_MESSAGE = ("Use 1 to 64 letters (of any language), digits, spaces or . _ ( ) + "
                      "-, starting with a letter or digit.")
BAD_IMAGE_NAMES = with_message(["<x>", "", " ", "../etc", "x" * 65, ".dot", "a/b", "桌面!"],
                               IMAGE_NAME_MESSAGE) + [("a\tb", INVISIBLE)]


@pytest.mark.parametrize("name,message", BAD_IMAGE_NAMES, ids=ids(BAD_IMAGE_NAMES))
def test_image_names(world, name, message):
    refused(world, ["images", "add", "--", name, BASE_IMAGE], message, "images.add", name)


ABSOLUTE = "Enter the absolute path of the image file on the hosts"
NORMAL = "Write the path without '..', '.', '//' or a final '/'."
CONTROL = "The path contains control characters."
BAD_PATHS = [
    ("../", ABSOLUTE), ("../../../../etc/passwd", ABSOLUTE), ("relative/base.qcow2", ABSOLUTE),
    ("base.qcow2", ABSOLUTE), ("./base.qcow2", ABSOLUTE), ("~/x", ABSOLUTE),
    ("file:///etc/passwd", ABSOLUTE), ("", ABSOLUTE), ("C:\\images\\x.qcow2", ABSOLUTE),
    ("/" + "a" * 1100, ABSOLUTE),
    ("//x", NORMAL), ("//var/lib/images/base.qcow2", NORMAL), ("/", NORMAL),
    ("/var/lib/images/../images/base.qcow2", NORMAL), ("/var/lib/images/./base.qcow2", NORMAL),
    ("/var/lib/images//base.qcow2", NORMAL), ("/var/lib/images/base.qcow2/", NORMAL),
    ("/var/lib/images/..", NORMAL),
    ("/var/lib/images/base.qcow2\x00.png", CONTROL), ("/var/lib/images/a\nb", CONTROL),
    ("/var/lib/images/\x1b[2J", CONTROL),
    ("/nonexistent/x.qcow2", "No file at /nonexistent/x.qcow2 on any host (checked on h1)."),
    ("/var/lib/images", "No file at /var/lib/images on any host"),
]


@pytest.mark.parametrize("path,message", BAD_PATHS, ids=ids(BAD_PATHS))
def test_image_paths(world, path, message):
    refused(world, ["images", "add", "--", "img", path], message, "images.add", "img")


def test_image_twice(world):
    refused(world, ["images", "add", "--", "base", "/var/lib/images/base.raw"],
            "An image with this name exists.", "images.add", "base")


# -- templates ---------------------------------------------------------------------------
SIZES = {"--vcpus": "1", "--memory": "512", "--disk": "2"}


def template_args(name: str, image: str = "base", **sizes: str) -> list[str]:
    options = {**SIZES, **{f"--{k}": v for k, v in sizes.items()}}
    return ["templates", "add", f"--image={image}"] + \
        [f"{k}={v}" for k, v in options.items()] + ["--", name]


BAD_TEMPLATE_NAMES = with_message(["<x>", "", " ", "../etc", "x" * 65, ".x", "a/b"],
                                  IMAGE_NAME_MESSAGE)


@pytest.mark.parametrize("name,message", BAD_TEMPLATE_NAMES, ids=ids(BAD_TEMPLATE_NAMES))
def test_template_names(world, name, message):
    refused(world, template_args(name), message, "templates.add", name)


HUGE = str(10 ** 30)
BAD_SIZES = [
    ("vcpus", "0", 1, 256), ("vcpus", "-1", 1, 256), ("vcpus", "257", 1, 256),
    ("vcpus", HUGE, 1, 256), ("vcpus", "-" + HUGE, 1, 256),
    ("memory", "0", 64, 4194304), ("memory", "63", 64, 4194304),
    ("memory", "-512", 64, 4194304), ("memory", "4194305", 64, 4194304),
    ("memory", str(2 ** 64), 64, 4194304),
    ("disk", "0", 1, 65536), ("disk", "-1", 1, 65536), ("disk", "65537", 1, 65536),
    ("disk", str(2 ** 63), 1, 65536), ("disk", HUGE, 1, 65536),
]


@pytest.mark.parametrize("option,value,low,high", BAD_SIZES,
                         ids=[f"{o}={v[:12]}" for o, v, _, _ in BAD_SIZES])
def test_template_sizes(world, option, value, low, high):
    refused(world, template_args("t1", **{option: value}),
            f"Enter a whole number from {low} to {high}.", "templates.add", "t1")


def test_template_disk_smaller_than_its_image(world):
    refused(world, template_args("t1", image="raw", disk="1"),
            "The image raw needs at least 2 GiB.", "templates.add", "t1")


def test_template_on_no_image_and_twice(world):
    refused(world, template_args("t1", image="nope"), "There is no image named nope.",
            "templates.add", "t1")
    refused(world, template_args("small"), "A template with this name exists.",
            "templates.add", "small")


def test_template_notes_longer_than_the_form_allows(world):
    args = template_args("t1")[:-2] + ["--notes=" + "n" * 2001, "--", "t1"]
    refused(world, args, "2000", "templates.add", "t1")


def test_template_notes_beyond_the_column_on_mariadb(mysql_app, test_host):
    world = make_world(mysql_app, test_host)
    args = template_args("t1")[:-2] + ["--notes=" + "n" * 70000, "--", "t1"]
    refused(world, args, "2000", "templates.add", "t1")


# -- users -------------------------------------------------------------------------------
USERNAME_MESSAGE = ("Login names use 2 to 32 ASCII letters (a-z, A-Z), digits, '.', '_' or "
                    "'-', starting with a letter or digit; full names may use any language.")
BAD_USERNAMES = ["a", "", " ", "<x>", "a b", "../etc", "x" * 33, "_x", ".x", "-x", "a/b",
                 "a@b"] + NOT_ASCII


@pytest.mark.parametrize("username", BAD_USERNAMES, ids=ids(BAD_USERNAMES))
def test_user_names(world, username):
    refused(world, ["users", "create", "--", username], USERNAME_MESSAGE, "users.create",
            username)


@pytest.mark.parametrize("username", ["carol", "CAROL", " carol ", "admin", "Admin"])
def test_user_names_taken(world, username):
    refused(world, ["users", "create", "--", username], "This user name is taken.",
            "users.create", username)


EMAIL_SHAPE = "Enter an e-mail address such as name@example.org."
BAD_EMAILS = ["not an email", "a@b", "@", "a@", "@example.org", "a@@example.org",
              "a b@example.org", "<a>@example.org", "a@example..org",
              ("e" * 250 + "@example.org", "Use at most 254 characters for the e-mail "
                                           "address.")]


@pytest.mark.parametrize("email", BAD_EMAILS, ids=ids(BAD_EMAILS))
def test_user_emails(world, email):
    email, message = email if isinstance(email, tuple) else (email, EMAIL_SHAPE)
    refused(world, ["users", "create", f"--email={email}", "--", "dave"], message,
            "users.create", "dave")


def test_user_full_name_too_long(world):
    refused(world, ["users", "create", "--full-name=" + "x" * 121, "--", "dave"],
            "Use at most 120 characters for the full name.", "users.create", "dave")


BAD_PASSWORDS = [
    ("short", "Use at least 10 characters."), ("123456789", "Use at least 10 characters."),
    ("", "Use at least 10 characters."), ("aaaaaaaaaaaa", "The password is too simple"),
    ("abababababab", "The password is too simple"),
    ("DAVE-THE-USER", "The password must not be the user name."),
    (("abcdefgh" * 33)[:257], "Use at most 256 characters."),
]


@pytest.mark.parametrize("password,message", BAD_PASSWORDS, ids=ids(BAD_PASSWORDS))
def test_user_passwords(world, password, message):
    """The password comes from the environment (never an argument); an empty variable
    falls back to stdin, which is empty here."""
    refused(world, ["users", "create", "--", "dave-the-user"], message, "users.create",
            "dave-the-user", env={"LOUCLOUD_USER_PASSWORD": password})


# -- the edges are accepted: the tables above refuse for the reason they name -------------
ACCEPTED = [
    ["vms", "create", "--owner=carol", "--template=small", "--", "x" * 64],
    ["vms", "create", "--owner=carol", "--template=small", "--", "a.b_c-D9"],
    ["hosts", "add", "--", "h" * 64, "test:///default"],
    ["images", "add", "--", "I" + " (x)+_.-" * 7 + "abcdefg", "/var/lib/images/base.raw"],
    template_args("T" * 64, vcpus="256", memory="64", disk="65536"),
    template_args("t-low", image="raw", vcpus="1", memory="4194304", disk="2"),
    ["users", "create", "--email=" + "e" * 64 + "@example.org", "--full-name=" + "x" * 120,
     "--", "u" * 32],
    ["users", "create", "--", "d2"],
]


@pytest.mark.parametrize("args", ACCEPTED, ids=[" ".join(a[:2]) + f"-{i}"
                                                for i, a in enumerate(ACCEPTED)])
def test_the_edges_are_accepted(world, args):
    app = world["app"]
    result = run(world, args, env={"LOUCLOUD_USER_PASSWORD": "0123456789"})
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    [event] = _events(app)[-1:]
    assert (event.action, event.result) == (f"{args[0]}.{args[1]}", "ok")
