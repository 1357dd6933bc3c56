"""The connection pool on real libvirt: the test driver, a missing socket (refused at
once) and a socket that accepts but never answers (a hung host)."""
from __future__ import annotations

import threading
import time

import pytest

from loucloud.virt import HostPool, HostUnavailable, NoAnswer, hosts
from loucloud.virt.errors import DomainNotFound, VirtError


@pytest.fixture
def pool():
    p = HostPool(offline_grace=0.2)
    yield p
    p.close()


def test_one_connection_per_host_reused(pool, test_host):
    first = pool.call(test_host, lambda conn: conn, timeout=5)
    second = pool.call(test_host, lambda conn: conn, timeout=5)
    assert first is second
    assert pool.state(test_host).online is True


def test_host_info_reports_the_node(pool, test_host):
    info = pool.call(test_host, hosts.host_info, timeout=5)
    assert info.cpus == 4 and info.memory_mib == 8192
    assert info.hypervisor == "TEST"
    assert info.domain_types == ("test",)
    assert info.libvirt_version.count(".") == 2


def test_libvirt_errors_are_translated(pool, test_host):
    with pytest.raises(DomainNotFound):
        pool.call(test_host, lambda conn: conn.lookupByName("nope"), timeout=5)
    # An error of the operation does not make the host offline.
    assert pool.state(test_host).online is True


def test_a_parse_error_is_one_line_without_the_document(pool, test_host):
    """libvirt quotes the line it could not parse on the lines after its reason."""
    with pytest.raises(VirtError) as info:
        pool.call(test_host, lambda conn: conn.defineXML("<domain><SECRET>x</wrong>"),
                  timeout=5)
    assert "\n" not in str(info.value) and "mismatch" in str(info.value)
    assert "<domain>" not in str(info.value)


def test_a_test_driver_file_is_never_quoted(pool, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("SECRET-LINE-42\n")
    with pytest.raises(HostUnavailable) as info:
        pool.call(f"test://{secret}", hosts.host_info, timeout=5)
    assert str(info.value) == "no such file, or not a node description for libvirt's " \
                              "test driver"
    assert "SECRET" not in pool.state(f"test://{secret}").error


def test_refused_host_is_offline_with_reason(pool, tmp_path):
    uri = f"qemu+unix:///system?socket={tmp_path / 'missing.sock'}"
    with pytest.raises(HostUnavailable, match="No such file"):
        pool.call(uri, hosts.host_info, timeout=5)
    state = pool.state(uri)
    assert state.online is False and state.since is not None
    assert "No such file" in state.error


def test_hung_host_costs_at_most_the_bound_then_almost_nothing(pool, silent_socket,
                                                                test_host):
    start = time.monotonic()
    results = pool.call_many([silent_socket, test_host], hosts.host_info, timeout=1.0)
    first = time.monotonic() - start
    assert isinstance(results[silent_socket], HostUnavailable)
    assert results[test_host].cpus == 4  # the other host answered
    assert 0.9 <= first < 2.0
    # The connect still hangs in the background: later calls do not wait for it again.
    start = time.monotonic()
    results = pool.call_many([silent_socket, test_host], hosts.host_info, timeout=1.0)
    assert time.monotonic() - start < 0.3
    assert isinstance(results[silent_socket], HostUnavailable)
    assert pool.state(silent_socket).online is False


def test_a_call_that_hangs_makes_the_host_fail_fast_until_it_returns(pool, test_host):
    release = threading.Event()
    pool.call(test_host, lambda conn: None, timeout=5)
    with pytest.raises(HostUnavailable, match="did not answer"):
        pool.call(test_host, lambda conn: release.wait(10), timeout=0.3)
    start = time.monotonic()
    with pytest.raises(HostUnavailable):
        pool.call(test_host, lambda conn: None, timeout=5)
    assert time.monotonic() - start < 0.1
    release.set()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            pool.call(test_host, lambda conn: None, timeout=5)
            break
        except HostUnavailable:
            time.sleep(0.05)
    assert pool.state(test_host).online is True


def test_a_patient_call_past_its_bound_leaves_a_host_that_answers_online(pool, test_host):
    """A verb over a VM's whole memory (a memory snapshot, Suspend to disk) that outlives
    its bound: NoAnswer (its outcome unknown), and the host, which still answers, stays
    online and usable at once while the call goes on."""
    release = threading.Event()
    done = threading.Event()

    def long_verb(conn):
        release.wait(10)
        done.set()
    pool.call(test_host, lambda conn: None, timeout=5)
    start = time.monotonic()
    with pytest.raises(NoAnswer, match="no answer within 0.3 s .*may still be at it"):
        pool.call(test_host, long_verb, timeout=0.3, patient=True)
    assert time.monotonic() - start < 2
    assert pool.state(test_host).online is True
    start = time.monotonic()
    assert pool.call(test_host, hosts.host_info, timeout=5).cpus == 4
    assert time.monotonic() - start < 0.5
    assert not done.is_set()           # the long verb is still at it
    release.set()
    assert done.wait(5)
    assert pool.state(test_host).online is True


def test_a_patient_call_that_never_reached_its_host_is_no_unknown_outcome(pool,
                                                                        silent_socket):
    """A patient call runs on a connection of its own; when that connection does not
    even open within the bound, the verb was never sent: HostUnavailable, not NoAnswer
    (the services then say the VM was not changed, which is true)."""
    ran = threading.Event()
    start = time.monotonic()
    with pytest.raises(HostUnavailable) as info:
        pool.call(silent_socket, lambda conn: ran.set(), timeout=0.5, patient=True)
    assert not isinstance(info.value, NoAnswer)
    assert "nothing was done" in str(info.value)
    assert time.monotonic() - start < 1.5 and not ran.is_set()


def test_host_load_on_test_driver(pool, test_host):
    load = pool.call(test_host, hosts.host_load, None, timeout=5)
    assert load.memory_total_mib == 8192
    assert load.domains_total == 0
    assert load.cpus == 4


def test_forget_closes(pool, test_host):
    pool.call(test_host, lambda conn: None, timeout=5)
    pool.forget(test_host)
    assert pool.state(test_host).online is None
