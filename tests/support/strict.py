"""Strict mode: with LOUCLOUD_STRICT_TESTS=1 a skipped test is a failure.

The lab, browser, MariaDB and Apache tests skip themselves where their environment is
missing, which keeps a developer's machine green but would let a CI machine without them
pass too. CI (.ci/run) switches this on, so there every skip fails the run and says why.

Covered: skips in setup (a fixture calling pytest.skip, skip/skipif marks), in the test
body and in teardown (each reported as an error or failure with the skip's reason), and
skips while collecting a module (pytest.importorskip or pytest.skip(allow_module_level=
True) at import), which become collection errors. Expected failures (xfail) are left as
they are: they are not skips.

Loaded for the whole suite by ``-p tests.support.strict`` in pytest.ini's addopts.
"""
from __future__ import annotations

import os

import pytest

ENV = "LOUCLOUD_STRICT_TESTS"


def _strict() -> bool:
    return os.environ.get(ENV) == "1"


def _reason(report: pytest.BaseReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (path, lineno, "Skipped: ...")
        path, lineno, message = longrepr
        return f"{message} ({path}:{lineno})"
    return str(longrepr)


def _fail(report: pytest.BaseReport) -> None:
    report.longrepr = f"{ENV}=1, so this skip is a failure: {_reason(report)}"
    report.outcome = "failed"


def pytest_report_header(config: pytest.Config) -> str | None:
    if _strict():
        return f"strict mode ({ENV}=1): every skip is a failure"
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    if _strict() and report.skipped and not hasattr(report, "wasxfail"):
        _fail(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    report = yield
    if _strict() and report.skipped:
        _fail(report)
    return report
