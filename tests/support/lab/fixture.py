"""pytest wiring of the host lab: the session fixture ``lab`` (made available to every
test by tests/conftest.py, which also imports ``pytest_unconfigure`` from here), used by
the system tests (tests/system/) and by the browser tests that need real hosts.

The session fixture ``lab`` starts two real libvirtd hosts (h1 with an isolated libvirt
network "default", h2 without) and tears them down at the end of the session, also after
failures and Ctrl-C.  Each run takes its own slot (prefix, subnet, workdir; see
tests/support/lab/slots.py) and holds it for the session, so two runs on one machine
never share or tear down each other's lab; leftovers of a killed run are removed by the
next run that takes the same slot.

Environment (each fixes that part of the slot; by default the run picks a free one):
  LOUCLOUD_HOSTLAB_DIR     workdir of the pytest lab (default /tmp/loucloud-hostlab-pytest-<prefix>)
  LOUCLOUD_HOSTLAB_PREFIX  netns/interface prefix (default lt0 .. lt7); a lab with the same
                           prefix that is still running (e.g. `lab up`) is torn down!
  LOUCLOUD_HOSTLAB_SUBNET  the lab's addresses, 10.230 to 10.250 (default 10.232 .. 10.239
                           with the slot; 10.231 with a given prefix)
  LOUCLOUD_HOSTLAB_KEEP    "1": keep the per-host dirs (logs) after the session
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from types import FrameType

import pytest

from . import HostLab, LabSlot, acquire_slot

# labs started by this process and their slots; torn down again in pytest_unconfigure if
# the normal fixture teardown did not run (KeyboardInterrupt inside a test, internal errors)
_active_labs: list[tuple[HostLab, LabSlot]] = []


def pytest_unconfigure(config: pytest.Config) -> None:
    while _active_labs:
        host_lab, slot = _active_labs.pop()
        try:
            host_lab.teardown()
        finally:
            slot.release()


def _sigterm_to_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest) -> Iterator[HostLab]:
    reason = HostLab.unavailable_reason()
    if reason:
        pytest.skip(f"host lab unavailable: {reason}")
    slot = acquire_slot(os.environ)
    keep = os.environ.get("LOUCLOUD_HOSTLAB_KEEP") == "1"

    # a SIGTERM (CI timeout, kill) should tear the lab down like Ctrl-C does
    old_handler = None
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        try:
            old_handler = signal.signal(signal.SIGTERM, _sigterm_to_keyboard_interrupt)
        except ValueError:  # not in the main thread
            old_handler = None

    try:
        host_lab = HostLab(slot.workdir, slot.prefix, slot.subnet)
    except BaseException:
        slot.release()
        raise
    entry = (host_lab, slot)
    _active_labs.append(entry)
    try:
        host_lab.start(count=2, network_on={1})
        yield host_lab
    finally:
        failed = request.session.testsfailed > 0
        # keep the logs of a failed session for inspection; processes, namespaces,
        # veths and routes are always removed
        try:
            host_lab.teardown(remove_files=not (keep or failed))
        finally:
            if entry in _active_labs:
                _active_labs.remove(entry)
            slot.release()
        if old_handler is not None:
            signal.signal(signal.SIGTERM, old_handler)


