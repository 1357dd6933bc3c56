"""Property-based tests (Hypothesis) of the VM commands: `vms create` with any name and
owner, every action and delete on any name of any owner (the contract of every example:
tests/test_fuzz_cli.py's docstring)."""
from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from loucloud.services.vms import lifecycle as vm_service
from tests.support.fuzz import FUZZ, counted, nasty_text
from tests.support.fuzz_cli import (  # noqa: F401 (cli_world: a fixture)
    OWNER_TRICKS,
    OWNERS,
    SEP,
    VM_NAMES,
    cli_items,
    cli_world,
    run_cli,
    to_args,
)


# -- VMs -------------------------------------------------------------------------------

def test_fuzz_cli_vms_create(app, cli_world):
    with counted("cli vms create") as count:
        @FUZZ
        @given(items=cli_items({"NAME": VM_NAMES, "--owner": OWNERS,
                                "--template": st.just("small"),
                                "--host": st.sampled_from(["h1"])},
                               hostile={"--owner": OWNER_TRICKS,
                                        "NAME": st.one_of(st.sampled_from(
                                            ["a b", "../etc", "a</name><devices>", "x" * 65,
                                             "é", "c1", " c1 ", "c1\n", "-x", "--help",
                                             "ｃ１", "c\u202e1", "p\u0430ypal"]),
                                            nasty_text())}),
               no_start=st.booleans(), separator=SEP)
        def run(items, no_start, separator):
            flags = ["--no-start"] if no_start else []
            run_cli(cli_world, to_args(["vms", "create"], items, flags, separator), count)

        run()


def test_fuzz_cli_vms_actions(app, cli_world):
    """Every VM action and delete, on any name of any owner: done only on a VM of the
    user --owner names; a name of someone else's VM is refused as unknown (check_owner).
    The explicit examples come first: each names another user as the owner of a VM, for
    an action that would succeed."""
    commands = list(vm_service.ACTIONS) + ["delete"]
    pairs = [("c1", "carol"), ("c2", "carol"), ("d1", "dave")]

    def items_for(pair):
        return cli_items({"NAME": st.just(pair[0]), "--owner": st.just(pair[1])},
                         hostile={"--owner": st.one_of(OWNERS, OWNER_TRICKS),
                                  "NAME": st.one_of(VM_NAMES, st.sampled_from(
                                      ["C1", "c1 ", "%", "_1", "c1\x00", "d1"]), nasty_text())})

    with counted("cli vms <action>/delete") as count:
        @FUZZ
        @given(action=st.sampled_from(commands), items=st.sampled_from(pairs).flatmap(items_for),
               separator=SEP)
        @example(action="start", items=[("NAME", "c2"), ("--owner", "dave")], separator=True)
        @example(action="pause", items=[("NAME", "d1"), ("--owner", "carol")], separator=True)
        @example(action="delete", items=[("NAME", "c1"), ("--owner", "admin")], separator=True)
        @example(action="start", items=[("NAME", "\r\n"), ("--owner", "carol")], separator=True)
        @example(action="start", items=[("NAME", "\x1b[@"), ("--owner", "carol")], separator=True)
        def run(action, items, separator):
            run_cli(cli_world, to_args(["vms", action], items, [], separator), count,
                    owned=items)

        run()
