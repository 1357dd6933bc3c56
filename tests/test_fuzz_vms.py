"""Property-based tests (Hypothesis) of the VM forms and buttons: create with any name,
template and host; every action, console and delete on any id, as the owner, another
user and the administrator, HTML and JSON (the contract of every example:
tests/test_fuzz_forms.py's docstring)."""
from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from loucloud.services.vms import lifecycle as vm_service
from tests.support.fuzz import (
    FUZZ,
    NO_TOKEN,
    counted,
    csrf_text,
    display_name_text,
    form_data,
    nasty_text,
    number_text,
    weighted,
)
from tests.support.fuzz_web import (  # noqa: F401 (world: a fixture)
    id_text,
    path_segment,
    submit,
    world,
)


# -- VMs -------------------------------------------------------------------------------
VM_NAME = display_name_text("._-", "._-")


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
                                             "é", "a1", " a1 ", "a1\n", "ａ１", "a\u202eb",
                                             "p\u0430ypal"]), nasty_text())}),
               csrf=csrf_text())
        @example(who="alice", csrf="forged", items=[
            ("name", "forged"), ("template_id", str(world.ids["template"])),
            ("host_id", "0"), ("start", "y")])
        def run(who, items, csrf):
            submit(world, posters[who], "/vms/new", items, count, csrf=csrf)

        run()


def test_fuzz_vm_actions(app, world):
    """POST /vms/<id>/<action>, /console, /delete with any id and action, as owner,
    other user, a manager of the owner's group (dave) and administrator, HTML and JSON.
    Another user's POST is 404 and changes nothing, whatever the action, and so is a
    manager's but start, shut down, force off, reboot, reset and the consoles; a forged
    or missing CSRF token is 400 (submit's check_authority). The explicit examples come
    first: bob and dave on alice's VMs, alice with no or a forged token, each on an
    action that would succeed."""
    posters = {"alice": world.poster("alice"), "bob": world.poster("bob"),
               "admin": world.poster("admin"), "dave": world.poster("dave")}
    actions = list(vm_service.ACTIONS) + ["delete", "console", "screen"]
    vm_ids = st.sampled_from([str(i) for i in world.vm_ids])
    a1, a2, b1 = (str(i) for i in world.vm_ids)
    with counted("web POST /vms/<id>/<action>") as count:
        @FUZZ
        @given(who=st.sampled_from(sorted(posters)),
               vm_id=weighted((7, vm_ids), (3, id_text(world))),
               action=weighted((8, st.sampled_from(actions)), (2, nasty_text())),
               as_json=st.booleans(), csrf=csrf_text(),
               items=st.lists(st.tuples(st.sampled_from(["action", "vm_id", "x"]), nasty_text()),
                              max_size=2))
        @example(who="bob", vm_id=a2, action="start", as_json=False, csrf=None, items=[])
        @example(who="bob", vm_id=a1, action="pause", as_json=True, csrf=None, items=[])
        @example(who="alice", vm_id=b1, action="delete", as_json=False, csrf=None, items=[])
        @example(who="alice", vm_id=a1, action="pause", as_json=False, csrf=NO_TOKEN, items=[])
        @example(who="admin", vm_id=b1, action="pause", as_json=True, csrf="forged", items=[])
        # dave manages alice's group (issue 16): her VMs' operations only, nobody else's
        @example(who="dave", vm_id=a2, action="start", as_json=False, csrf=None, items=[])
        @example(who="dave", vm_id=a1, action="pause", as_json=True, csrf=None, items=[])
        @example(who="dave", vm_id=a1, action="delete", as_json=False, csrf=None, items=[])
        @example(who="dave", vm_id=b1, action="poweroff", as_json=False, csrf=None, items=[])
        def run(who, vm_id, action, as_json, csrf, items):
            url = f"/vms/{path_segment(vm_id)}/{path_segment(action)}"
            headers = {"Accept": "application/json"} if as_json else None
            submit(world, posters[who], url, items, count, csrf=csrf, headers=headers)

        run()
