"""Helpers of the VM tests (tests/test_vms_*.py): the catalog fixture, the VMs in the
database, the domains and volumes on a test-driver host (read through the app's own
connection: the test driver keeps its state per connection), and the page actions."""
from __future__ import annotations

import json

import pytest

from loucloud.extensions import db
from loucloud.models import VM
from loucloud.services.hypervisors import pool
from tests.factories import make_catalog


@pytest.fixture
def catalog(app, test_host):
    """Host h1 (test driver) with the image base.qcow2 and the template "small"
    (1 vCPU, 512 MiB, 2 GiB)."""
    with app.app_context():
        template = make_catalog(("h1", test_host))
    return template


def host_call(app, uri, fn, *args):
    """Run fn(conn, *args) on the app's own connection to the host (the test driver's
    state lives in that connection)."""
    with app.app_context():
        return pool().call(uri, fn, *args, timeout=10)


def domains_on(app, uri) -> dict[str, str]:
    """{name: state} of every domain on the host."""
    def names(conn):
        return {d.name(): ("running" if d.isActive() else "shut off")
                for d in conn.listAllDomains(0)}
    return host_call(app, uri, names)


def volumes_in(app, uri, pool_name="loucloud") -> dict[str, str]:
    """{volume name: XML} of a pool on the host ({} when the pool does not exist)."""
    def vols(conn):
        names = [p.name() for p in conn.listAllStoragePools(0)]
        if pool_name not in names:
            return {}
        p = conn.storagePoolLookupByName(pool_name)
        return {v.name(): v.XMLDesc(0) for v in p.listAllVolumes(0)}
    return host_call(app, uri, vols)


def vms(app) -> list[VM]:
    with app.app_context():
        rows = db.session.execute(db.select(VM).order_by(VM.id)).scalars().all()
        for row in rows:
            db.session.expunge(row)
        return rows


def create(client, name, template_id, **extra):
    data = {"name": name, "template_id": template_id, "host_id": 0, "start": "y"}
    data.update(extra)
    if extra.get("start") is False:
        del data["start"]
    return client.post("/vms/new", data)


def act(client, vm_id, action, json_=False):
    headers = {"Accept": "application/json"} if json_ else {}
    return client.post(f"/vms/{vm_id}/{action}", headers=headers)


def state_of(client, vm_id):
    return json.loads(client.get(f"/vms/{vm_id}.json").get_data(as_text=True))["state"]

