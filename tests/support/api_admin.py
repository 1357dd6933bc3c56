"""Preparations of the administrator's API routes in the matrix (tests/test_api_access.py):
``prepare(app, world)`` readies the world of tests/test_access.py for one request."""
from __future__ import annotations

from loucloud.services.hypervisors import pool
from tests.test_access import STRAY, _make_stray


def stop_default_network(app, world) -> None:
    """The world's host's "default" network stopped, so that starting it is allowed."""
    def stop(conn):
        conn.networkLookupByName("default").destroy()
    with app.app_context():
        pool().call(world["host_uri"], stop, timeout=10)


def stray_volume(app, world) -> None:
    """An orphan volume in the world's host's pool, its name in the URL's ``name``."""
    _make_stray(app, world, None)
    world["name"] = STRAY
