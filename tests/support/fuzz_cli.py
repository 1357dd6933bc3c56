"""The world of the command-line fuzz tests (tests/test_fuzz_cli*.py and the regressions
they found, kept with their features), the arguments made from form-like items, and
`run_cli`, which runs one example and checks it."""
from __future__ import annotations

import re
import traceback
from dataclasses import dataclass

import click
import pytest
from hypothesis import strategies as st

from loucloud.extensions import db
from loucloud.models import VM, User
from tests.conftest import BASE_IMAGE
from tests.factories import make_catalog, make_user, make_vm, write_test_node
from tests.support.fuzz import (
    assert_fits_columns,
    assert_same,
    display_name_text,
    form_data,
    host_uris,
    name_text,
    nasty_text,
    snapshot,
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
            writes: bool = True, owned: list[tuple[str, str]] | None = None
            ) -> tuple[object, str]:
    """Invoke the command; check the result; after a failure (or any command that should
    never write: ``writes=False``) check that nothing changed. ``owned``: the (owner,
    name) items of a command on one VM (`vms <action> NAME --owner OWNER`), checked by
    check_owner."""
    what = f"cli {args[:2]}"
    uris = world.uris()
    before = snapshot(world.app, uris)
    pairs = vm_pairs(world.app)
    count.examples += 1
    result = world.app.test_cli_runner().invoke(args=args, input=input)
    outcome = check_cli(result, args, what)
    after = snapshot(world.app, uris)
    count.add(outcome)
    if owned is not None:
        check_owner(owned, pairs, result, outcome, f"{what} {args!r}")
    if outcome != "ok" or not writes:
        assert_same(before, after, f"{what} {args!r} ({outcome}: {result.output[:300]!r})")
    else:
        assert_fits_columns(world.app, f"{what} {args!r}")
    return result, outcome


def vm_pairs(app) -> set[tuple[str, str]]:
    """(owner's user name, VM name) of every VM."""
    with app.app_context():
        pairs = set(db.session.execute(
            db.select(User.username, VM.name).join(User, VM.owner_id == User.id)).all())
        db.session.remove()
    return pairs


def check_owner(items: list[tuple[str, str]], pairs: set[tuple[str, str]], result,
                outcome: str, what: str) -> None:
    """The command line's ownership: `--owner` names whose VM NAME is; a command that
    names someone else (the administrator included) is refused, saying that this user
    has no such VM, and changes nothing (run_cli checks that)."""
    owners = [v for k, v in items if k == "--owner"]
    names = [v for k, v in items if k == "NAME"]
    if outcome == "usage" or not owners or len(names) != 1 or names[0].startswith("-"):
        return  # click refused it, or read the name as an option (--help)
    owner, name = owners[-1], names[0]  # click keeps the last of a repeated option
    if outcome == "ok":
        assert (owner, name) in pairs, f"{what}: done on a VM that is not {owner!r}'s"
    elif (owner, name) not in pairs:  # as click writes it: no ANSI codes, \r\n as \n
        expected = click.unstyle(f"{owner} has no VM named {name}.")
        assert expected.replace("\r", "") in result.output.replace("\r", ""), \
            f"{what}: another's VM must be refused as unknown: {result.output!r}"


NAMES = name_text(max_len=20)
SEP = st.sampled_from([True, True, True, False])


OWNERS = st.sampled_from(["carol", "dave", "admin"])
OWNER_TRICKS = st.one_of(st.sampled_from(["Carol", " carol", "carol\x00", "nobody", "%", "_",
                                          "' OR '1'='1", "a</name><devices>"]), nasty_text())
VM_NAMES = display_name_text("._-", "._-", max_len=20)
HOST_NAMES = display_name_text("_.-", max_len=20)
IMAGE_NAMES = display_name_text(" _.()+-", max_len=20)  # and templates


BREAKS = re.compile(r"[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def check_cli(result, args: list[str], what: str) -> str:
    """Exit 0, or 1 with one line 'error: ...', or 2 for click's own usage errors (a
    value click cannot parse); never an exception. Returns 'ok', 'error' or 'usage'."""
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        tb = "".join(traceback.format_exception(*result.exc_info))
        raise AssertionError(f"{what} {args!r}: uncaught exception\n{tb}")
    output = result.output
    assert "Traceback" not in output, f"{what} {args!r}: traceback\n{output}"
    if result.exit_code == 0:
        return "ok"
    if result.exit_code == 1:
        assert output.startswith("error: "), f"{what} {args!r}: {output!r}"
        if not any(BREAKS.search(a) for a in args):  # a message may repeat an argument
            assert len(output.splitlines()) == 1, f"{what} {args!r}: {output!r}"
        return "error"
    assert result.exit_code == 2 and "Error: " in output, \
        f"{what} {args!r}: exit {result.exit_code}: {output!r}"
    return "usage"
