"""The suite on two processes: ``make test`` runs pytest-xdist with
``-n 2 --dist loadscope --no-loadscope-reorder``, and this plugin decides the scopes (the
units a worker takes whole):
- every test on the host lab (tests/system/, and the few files elsewhere that use the
  ``lab`` fixture: LAB_FILES) is in one scope, so one worker starts one lab, builds or
  finds the real guest once and runs them in their order;
- every other test goes with its module, so a module's fixtures are made once, on one
  worker.
The scopes are handed out in the order of collection (no reordering by size): the lab's
scope comes first (tests/browser/test_class_batch.py is collected first), so the longest
piece of work starts at once on one worker while the other takes everything else. While
one worker waits on the lab's guests (QEMU, mostly in other processes), the other runs
the fast tests on libvirt's test driver: the suite takes about as long as the longer.

The controller that hands the scopes out sees only test ids, so the lab's scope is
known by path; each worker checks that every test using the ``lab`` fixture (or the
real guest) is on such a path, and refuses to run otherwise. (xdist's own xdist_group
marks cannot be used: pytest 9.2 derives a test's id from its node, and xdist 3.8 writes
the group into an attribute pytest no longer reads.)

Loaded for the whole suite by ``-p tests.support.workers`` in pytest.ini's addopts;
without ``-n`` it only checks.
"""
from __future__ import annotations

import pytest

LAB_SCOPE = "the host lab"
LAB_DIRS = ("tests/system/",)
LAB_FILES = ("tests/browser/test_class_batch.py",)
LAB_FIXTURES = {"lab", "guest_image"}


def scope_of(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    if path.startswith(LAB_DIRS) or path in LAB_FILES:
        return LAB_SCOPE
    return path


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    astray = [item.nodeid for item in items
              if LAB_FIXTURES.intersection(getattr(item, "fixturenames", ()))
              and scope_of(item.nodeid) != LAB_SCOPE]
    if astray:
        raise pytest.UsageError(
            f"{astray[0]} uses the host lab outside {LAB_DIRS}: add its file to LAB_FILES "
            "in tests/support/workers.py (a second worker would start a second lab)")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class LabScopes(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return LabScopes(config, log)
