"""Strict mode (tests/support/strict.py): with LOUCLOUD_STRICT_TESTS=1 every kind of
skip fails the run and says why; without it skips stay skips."""
from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

SKIPPING = """
import pytest

@pytest.fixture
def service():
    pytest.skip("no such service here")

def test_fixture_skips(service):
    pass

def test_body_skips():
    pytest.skip("no lab here")

@pytest.mark.skipif(True, reason="no browser here")
def test_marked_skipif():
    pass

@pytest.mark.xfail(reason="a known bug")
def test_expected_failure():
    assert False

def test_passes():
    pass
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "tests.support.strict", "-ra", *args)


def test_strict_mode_turns_every_skip_into_a_failure(pytester, monkeypatch):
    monkeypatch.setenv("LOUCLOUD_STRICT_TESTS", "1")
    pytester.makepyfile(SKIPPING)
    result = run(pytester)
    # setup-phase skips (fixture, skipif) are errors, a skip in the body a failure
    result.assert_outcomes(passed=1, failed=1, errors=2, xfailed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "*ERROR at setup of test_fixture_skips*",
        "*LOUCLOUD_STRICT_TESTS=1, so this skip is a failure: Skipped: no such service here*",
        "*ERROR at setup of test_marked_skipif*",
        "*LOUCLOUD_STRICT_TESTS=1, so this skip is a failure: Skipped: no browser here*",
        "*_ test_body_skips _*",
        "*LOUCLOUD_STRICT_TESTS=1, so this skip is a failure: Skipped: no lab here*",
    ])


def test_strict_mode_fails_a_module_skipped_at_collection(pytester, monkeypatch):
    monkeypatch.setenv("LOUCLOUD_STRICT_TESTS", "1")
    pytester.makepyfile("""
        import pytest
        pytest.importorskip("loucloud_no_such_module")

        def test_never_runs():
            pass
    """)
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*so this skip is a failure: Skipped: could not import 'loucloud_no_such_module'*"])


def test_skips_stay_skips_without_the_variable(pytester, monkeypatch):
    monkeypatch.delenv("LOUCLOUD_STRICT_TESTS", raising=False)
    pytester.makepyfile(SKIPPING)
    result = run(pytester)
    result.assert_outcomes(passed=1, skipped=3, xfailed=1)
    assert result.ret == pytest.ExitCode.OK
