"""The suite on two processes (pytest-xdist, ``make test`` runs ``-n 2 --dist loadgroup --no-loadscope-reorder``).

Every test is given an xdist group, which is the unit a worker takes whole:
- the tests on the host lab (the ``lab`` fixture, the real guest image) form one group,
  so one worker starts one lab, builds or finds the guest once and runs them in their
  order (their module fixtures boot a guest once per module);
- every other test goes with its module, so a module's fixtures are made once, on one
  worker.
The groups are handed out in the order of collection (no reordering by size): the lab's
group comes first (tests/browser/test_class_batch.py is the first test on it), so the
longest piece of work starts at once on one worker and the other takes everything else.
While one worker waits on the lab's guests (QEMU, mostly in other processes), the other
runs the fast tests on libvirt's test driver: the whole suite takes about as long as the
longer of the two.

Loaded for the whole suite by ``-p tests.support.workers`` in pytest.ini's addopts; without
``-n`` the marks change nothing.
"""
from __future__ import annotations

import pytest

LAB_GROUP = "host-lab"
LAB_FIXTURES = {"lab", "guest_image"}


def group_of(item: pytest.Item) -> str:
    if LAB_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return LAB_GROUP
    return item.nodeid.split("::", 1)[0]


def pytest_configure(config: pytest.Config) -> None:
    # xdist registers it too; this keeps --strict-markers content with -p no:xdist
    config.addinivalue_line("markers", "xdist_group(name): the tests a worker takes whole")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.xdist_group(group_of(item)))
