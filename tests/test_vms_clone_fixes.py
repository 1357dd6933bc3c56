"""Clone on libvirt's test driver, after the review of issue 14: a host being drained
(or excluded from new VMs) gets no clone, said plainly, nothing made."""
from __future__ import annotations

import pytest

from loucloud.extensions import db
from loucloud.models import Host
from tests.support.vms import (  # noqa: F401 (catalog: a fixture)
    act,
    catalog,
    create,
    domains_on,
    vms,
    volumes_in,
)

JSON = {"Accept": "application/json"}


@pytest.fixture
def source(app, as_user, catalog, test_host):
    """alice's shut-off VM "orig" on h1."""
    assert create(as_user, "orig", catalog.id, start=False).status_code == 302
    [vm] = vms(app)
    return vm


def _world(app, uri):
    return sorted(domains_on(app, uri)), sorted(volumes_in(app, uri)), \
        [(v.name, v.status) for v in vms(app)]


@pytest.mark.parametrize("change, why", [
    ({"draining": True}, "h1 is being drained (emptied for maintenance)"),
    ({"accepts_vms": False}, "h1 is excluded from new VMs"),
])
def test_no_clone_on_a_host_being_drained(app, as_user, source, test_host, change, why):
    with app.app_context():
        host = db.session.get(Host, source.host_id)
        for field, value in change.items():
            setattr(host, field, value)
        db.session.commit()
    before = _world(app, test_host)
    response = as_user.post(f"/vms/{source.id}/clone", {"name": "copy"}, headers=JSON)
    assert response.status_code == 409, response.get_data(as_text=True)
    assert response.get_json()["error"] == \
        f"{why}: orig cannot be cloned there now (a clone is made on its source's host)."
    assert _world(app, test_host) == before
