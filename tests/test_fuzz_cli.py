"""Property-based tests (Hypothesis) of every command-line command that takes input (the
VM commands: test_fuzz_cli_vms.py): arbitrary names and owners, unicode and control
characters, XML metacharacters, path tricks (symlinks included), huge, negative and
non-numeric sizes, missing and repeated options.

For every example: no uncaught exception (no traceback); exit 0, or 1 with one line
'error: ...' (2 for click's own usage errors, when click cannot parse a value); after a
failure the database and the hosts (domains and volumes) are as they were; after a
success every stored string fits its column; a command on a VM is done only when
--owner names its owner (tests/support/fuzz_cli.py, check_owner). Examples run per
command: test-artifacts/fuzz-counts.json."""
from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from loucloud.extensions import db
from loucloud.models import User
from tests.conftest import BASE_IMAGE
from tests.support.fuzz import (
    FUZZ,
    NUMBER_TRICKS,
    XML_TRICKS,
    counted,
    nasty_text,
    number_text,
    path_text,
    safe_uri,
    weighted,
)
from tests.support.fuzz_cli import (  # noqa: F401 (cli_world: a fixture)
    HOST_NAMES,
    IMAGE_NAMES,
    NAMES,
    OWNER_TRICKS,
    OWNERS,
    PASSWORD_ENV,
    SEP,
    CliWorld,
    cli_items,
    cli_world,
    run_cli,
    to_args,
)


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
        @given(items=cli_items({"NAME": HOST_NAMES, "URI": st.sampled_from(accepted)},
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
        @given(items=cli_items({"NAME": IMAGE_NAMES,
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
        @given(items=cli_items({"NAME": IMAGE_NAMES,
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
