"""Property-based tests (Hypothesis) of every command-line command that takes input:
arbitrary names and owners, unicode and control characters, XML metacharacters, path
tricks (symlinks included), huge, negative and non-numeric sizes, missing and repeated
options.

For every example: no uncaught exception (no traceback); exit 0, or 1 with one line
'error: ...' (2 for click's own usage errors, when click cannot parse a value); after a
failure the database and the hosts (domains and volumes) are as they were; after a
success every stored string fits its column. Examples run per command:
test-artifacts/fuzz-counts.json."""
from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loucloud.extensions import db
from loucloud.models import User
from loucloud.services.vms import lifecycle as vm_service
from tests.conftest import BASE_IMAGE
from tests.factories import make_catalog, make_user, make_vm, write_test_node
from tests.support.fuzz import (
    FUZZ,
    NUMBER_TRICKS,
    XML_TRICKS,
    assert_fits_columns,
    assert_same,
    check_cli,
    counted,
    form_data,
    host_uris,
    name_text,
    nasty_text,
    number_text,
    path_text,
    safe_uri,
    snapshot,
    weighted,
)

PASSWORD_ENV = "LOUCLOUD_FUZZ_UNSET_PASSWORD"  # never set: the password comes on stdin


@dataclass
class CliWorld:
    app: object
    host: str
    tmp: str
    symlinks: list[str]
    node_files: list[str]

    def uris(self) -> set[str]:
        return host_uris(self.app, [self.host])


@pytest.fixture
def cli_world(app, test_host, tmp_path, monkeypatch) -> CliWorld:
    """admin, carol and dave; host h1 with image base and template small; VMs c1
    (running) and c2 (shut off) of carol, d1 of dave; symlinks that lead out of
    tmp_path; node files for new hosts."""
    monkeypatch.delenv("LOUCLOUD_USER_PASSWORD", raising=False)
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    with app.app_context():
        make_user("admin", is_admin=True)
        carol = make_user("carol")
        dave = make_user("dave")
        template = make_catalog(("h1", test_host))
        make_vm(carol.id, "c1", template.id)
        make_vm(carol.id, "c2", template.id, start=False)
        make_vm(dave.id, "d1", template.id)
    (tmp_path / "escape").symlink_to("/etc")
    (tmp_path / "image-link.qcow2").symlink_to(BASE_IMAGE)
    symlinks = [str(tmp_path / "escape" / "passwd"), str(tmp_path / "escape"),
                str(tmp_path / "image-link.qcow2"),
                str(tmp_path / "escape" / ".." / "etc" / "passwd")]
    nodes = [write_test_node(tmp_path / f"new{i}.xml", pools={"images": "/var/lib/images"})
             for i in range(2)]
    return CliWorld(app, test_host, str(tmp_path), symlinks,
                    [n[len("test://"):] for n in nodes])


POSITIONAL = {"NAME", "URI", "PATH", "USERNAME"}


def cli_items(valid, **kw):
    """form_data for a command: positional arguments keep their count most of the time;
    no unknown extra option (click refuses those itself)."""
    return form_data(valid, rare=POSITIONAL, extra=False, **kw)


def to_args(command: list[str], items: list[tuple[str, str]], flags: list[str],
            separator: bool) -> list[str]:
    """CLI arguments from form-like items: '--opt' items become '--opt=value', the others
    are positional (after '--' unless ``separator`` is False: then a name that starts
    with '-' reads as an option)."""
    options = [f"{k}={v}" for k, v in items if k.startswith("--")]
    positional = [v for k, v in items if not k.startswith("--")]
    return command + options + flags + (["--"] if separator else []) + positional


def run_cli(world: CliWorld, args: list[str], count, *, input: str | None = None,
            writes: bool = True) -> tuple[object, str]:
    """Invoke the command; check the result; after a failure (or any command that should
    never write: ``writes=False``) check that nothing changed."""
    what = f"cli {args[:2]}"
    uris = world.uris()
    before = snapshot(world.app, uris)
    count.examples += 1
    result = world.app.test_cli_runner().invoke(args=args, input=input)
    outcome = check_cli(result, args, what)
    after = snapshot(world.app, uris)
    count.add(outcome)
    if outcome != "ok" or not writes:
        assert_same(before, after, f"{what} {args!r} ({outcome}: {result.output[:300]!r})")
    else:
        assert_fits_columns(world.app, f"{what} {args!r}")
    return result, outcome


NAMES = name_text(max_len=20)
SEP = st.sampled_from([True, True, True, False])


# -- users -----------------------------------------------------------------------------

def test_fuzz_cli_users_create(app, cli_world):
    # Any character a terminal can send (UTF-8: no lone surrogates) but the line's end.
    line = st.characters(codec="utf-8", exclude_characters="\n")
    passwords = st.builds(lambda s: f"Pw-{s}-9xZ", st.text(line, min_size=4, max_size=24))
    with counted("cli users create") as count:
        @FUZZ
        @given(items=cli_items({"USERNAME": NAMES.filter(lambda s: len(s) >= 2),
                                "--full-name": st.text(max_size=40),
                                "--email": st.one_of(st.emails(), st.just("a@example.com")),
                                "--password-env": st.just(PASSWORD_ENV)},
                               hostile={"--full-name": st.one_of(
                                            st.text(min_size=121, max_size=200), nasty_text()),
                                        "--email": st.one_of(st.sampled_from(
                                            ["not an email", "a@b", "@", "x" * 255 + "@e.org"]),
                                            nasty_text()),
                                        "--password-env": st.one_of(
                                            st.sampled_from(["PATH", "HOME", "", "A=B"]),
                                            nasty_text())}),
               password=weighted((3, passwords), (1, nasty_text())), separator=SEP)
        def run(items, password, separator):
            args = to_args(["users", "create"], items, [], separator)
            run_cli(cli_world, args, count, input=password + "\n")

        run()


def test_cli_users_create_refuses_what_the_columns_cannot_hold(app, cli_world):
    """users.full_name is String(120), users.email String(254): SQLite would keep a longer
    value, MariaDB refuses the row (a DataError, a traceback)."""
    with counted("cli users create, over-long fields") as count:
        for i, option in enumerate([f"--full-name={'x' * 121}",
                                    f"--email={'e' * 250}@example.org",
                                    "--email=not an address"]):
            _, outcome = run_cli(cli_world, ["users", "create", option, "--", f"long{i}"],
                                 count, input="a good password 1\n")
            assert outcome == "error", option


# -- hosts -----------------------------------------------------------------------------
def test_fuzz_cli_hosts_add(app, cli_world):
    w = cli_world
    accepted = ["test:///default"] + [f"test://{p}" for p in w.node_files]
    tricks = ["test:///etc/passwd", f"test://{w.symlinks[0]}", f"test://{w.tmp}/escape",
              f"test://{w.tmp}/../../etc/passwd", "test:relative",
              f"qemu+unix:///system?socket={w.tmp}/dead.sock", "qemu+ssh://root@h1/other",
              "http://evil.example/system", "qemu+ext:///system?command=/bin/sh",
              "test:///default?a=<b>&c='", "test:///" + "a" * 300]
    fix = safe_uri(w.tmp)
    with counted("cli hosts add") as count:
        @FUZZ
        @given(items=cli_items({"NAME": NAMES, "URI": st.sampled_from(accepted)},
                               hostile={"URI": st.one_of(st.sampled_from(tricks), nasty_text())}),
               separator=SEP)
        def run(items, separator):
            items = [(k, fix(v) if k == "URI" else v) for k, v in items]
            run_cli(w, to_args(["hosts", "add"], items, [], separator), count)

        run()


# -- images ----------------------------------------------------------------------------
def test_fuzz_cli_images_add(app, cli_world):
    with counted("cli images add") as count:
        @FUZZ
        @given(items=cli_items({"NAME": name_text("A-Za-z0-9 _.()+-", max_len=20),
                                "PATH": st.sampled_from([BASE_IMAGE, "/var/lib/images/base.raw"]),
                                "--os": st.sampled_from(["linux", "windows"])},
                               hostile={"PATH": path_text(cli_world.symlinks)}),
               separator=SEP)
        def run(items, separator):
            run_cli(cli_world, to_args(["images", "add"], items, [], separator), count)

        run()


# -- templates -------------------------------------------------------------------------
def test_fuzz_cli_templates_add(app, cli_world):
    sizes = {"--vcpus": number_text(1, 256), "--memory": number_text(64, 4 * 1024 * 1024),
             "--disk": number_text(-5, 70000)}
    with counted("cli templates add") as count:
        @FUZZ
        @given(items=cli_items({"NAME": name_text("A-Za-z0-9 _.()+-", max_len=20),
                                "--image": st.just("base"),
                                "--vcpus": st.integers(1, 16).map(str),
                                "--memory": st.integers(64, 65536).map(str),
                                "--disk": st.integers(1, 500).map(str),
                                "--notes": st.text(max_size=100)},
                               hostile={**sizes, "--image": st.one_of(
                                   st.sampled_from(["Base", "base ", "nope"] + XML_TRICKS),
                                   nasty_text())}),
               separator=SEP)
        def run(items, separator):
            run_cli(cli_world, to_args(["templates", "add"], items, [], separator), count)

        run()


# -- VMs -------------------------------------------------------------------------------
OWNERS = st.sampled_from(["carol", "dave", "admin"])
OWNER_TRICKS = st.one_of(st.sampled_from(["Carol", " carol", "carol\x00", "nobody", "%", "_",
                                          "' OR '1'='1", "a</name><devices>"]), nasty_text())
VM_NAMES = name_text("A-Za-z0-9._-", "A-Za-z0-9._-", max_len=20)


def test_fuzz_cli_vms_create(app, cli_world):
    with counted("cli vms create") as count:
        @FUZZ
        @given(items=cli_items({"NAME": VM_NAMES, "--owner": OWNERS,
                                "--template": st.just("small"),
                                "--host": st.sampled_from(["h1"])},
                               hostile={"--owner": OWNER_TRICKS,
                                        "NAME": st.one_of(st.sampled_from(
                                            ["a b", "../etc", "a</name><devices>", "x" * 65,
                                             "é", "c1", " c1 ", "c1\n", "-x", "--help"]),
                                            nasty_text())}),
               no_start=st.booleans(), separator=SEP)
        def run(items, no_start, separator):
            flags = ["--no-start"] if no_start else []
            run_cli(cli_world, to_args(["vms", "create"], items, flags, separator), count)

        run()


def test_fuzz_cli_vms_actions(app, cli_world):
    """Every VM action and delete, on any name of any owner."""
    commands = list(vm_service.ACTIONS) + ["delete"]
    pairs = [("c1", "carol"), ("c2", "carol"), ("d1", "dave")]
    with counted("cli vms <action>/delete") as count:
        @FUZZ
        @given(action=st.sampled_from(commands), pair=st.sampled_from(pairs), data=st.data(),
               separator=SEP)
        def run(action, pair, data, separator):
            items = data.draw(cli_items(
                {"NAME": st.just(pair[0]), "--owner": st.just(pair[1])},
                hostile={"--owner": st.one_of(OWNERS, OWNER_TRICKS),
                         "NAME": st.one_of(VM_NAMES, st.sampled_from(
                             ["C1", "c1 ", "%", "_1", "c1\x00", "d1"]), nasty_text())}))
            run_cli(cli_world, to_args(["vms", action], items, [], separator), count)

        run()


def test_fuzz_cli_removals(app, cli_world):
    """hosts remove, images delete, templates delete with any name (the ones in use are
    refused)."""
    known = {"hosts remove": ["h1"], "images delete": ["base"], "templates delete": ["small"]}
    with counted("cli hosts remove / images delete / templates delete") as count:
        @FUZZ
        @given(command=st.sampled_from(sorted(known)), data=st.data(), separator=SEP)
        def run(command, data, separator):
            items = data.draw(cli_items({"NAME": st.sampled_from(known[command])},
                                        hostile={"NAME": st.one_of(
                                            st.sampled_from(["%", "_", "H1", " base"]),
                                            nasty_text())}))
            run_cli(cli_world, to_args(command.split(), items, [], separator), count)

        run()


# -- lists -----------------------------------------------------------------------------
def test_fuzz_cli_lists(app, cli_world):
    """Every list, as JSON or a table, with any --owner: never a write, JSON that parses."""
    groups = ["hosts", "users", "images", "templates", "vms"]
    with counted("cli <group> list [--json] [--owner]") as count:
        @FUZZ
        @given(group=st.sampled_from(groups), as_json=st.booleans(),
               owner=st.one_of(st.none(), OWNERS, OWNER_TRICKS))
        def run(group, as_json, owner):
            args = [group, "list"] + (["--json"] if as_json else [])
            if group == "vms" and owner is not None:
                args.append(f"--owner={owner}")
            result, outcome = run_cli(cli_world, args, count, writes=False)
            if outcome == "ok" and as_json:
                rows = json.loads(result.stdout)
                assert isinstance(rows, list) and all(isinstance(r, dict) for r in rows)
                assert rows or group == "vms"  # the others are never empty here

        run()


# -- init ------------------------------------------------------------------------------
def test_fuzz_cli_init(app, test_host, monkeypatch):
    """init with any LOUCLOUD_ADMIN_PASSWORD, each example without an administrator: a
    good password (or none: one is generated) creates him, a bad one is refused and
    creates nothing. The local host is the test host (never this machine's libvirtd)."""
    app.config["LOCAL_HOST_URI"] = test_host
    world = CliWorld(app, test_host, "", [], [])
    any_env = st.characters(codec="utf-8", exclude_characters="\x00")  # what os.environ holds
    env = st.one_of(st.none(), st.text(any_env, max_size=30),
                    st.sampled_from(["short", "aaaaaaaaaaaa", "admin", "ADMIN", " " * 12,
                                     "a good password 1"] + NUMBER_TRICKS[:5]))
    with counted("cli init") as count:
        @FUZZ
        @given(password=env, local=st.booleans())
        def run(password, local):
            with app.app_context():  # each example creates the administrator anew
                db.session.execute(db.delete(User).where(User.is_admin.is_(True)))
                db.session.commit()
            if password is None:
                monkeypatch.delenv("LOUCLOUD_ADMIN_PASSWORD", raising=False)
            else:
                monkeypatch.setenv("LOUCLOUD_ADMIN_PASSWORD", password)
            args = ["init", "--local-host" if local else "--no-local-host"]
            run_cli(world, args, count)

        run()


def test_cli_hosts_add_error_is_one_line_without_file_content(app, cli_world, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-LINE-42 not for anybody\n")
    (tmp_path / "secret-link").symlink_to(secret)
    """libvirt's XML errors about a test:///<file> quote the file on more lines."""
    with counted("cli hosts add test:///<a file>") as count:
        for uri in [f"test://{secret}", f"test://{tmp_path}/secret-link", f"test://{tmp_path}"]:
            result, outcome = run_cli(cli_world, ["hosts", "add", "--", "x1", uri], count)
            assert outcome == "error" and "SECRET-LINE-42" not in result.output
