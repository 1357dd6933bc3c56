"""The REST API's ground rules, on the test:/// driver: personal tokens (made, shown
once, kept as a hash, read-only, expired, revoked, last used), the VM verbs through a
token, the problem shape of errors and their statuses, CSRF for the cookie's writes,
rate limits."""
from __future__ import annotations

import hashlib

import pytest

from loucloud.extensions import db
from loucloud.models import VM
from loucloud.models.tokens import ApiToken
from tests.factories import make_catalog
from tests.support.api import ApiClient, make_token

PROBLEM = "application/problem+json"


@pytest.fixture
def catalog(app, test_host, admin, user, other_user):
    with app.app_context():
        return make_catalog(("h1", test_host)).id


@pytest.fixture
def alice(app, user):
    return ApiClient(app, make_token(app, "alice"))


def create(client, name="web1", template_id=1, **extra):
    return client.post("/api/v1/vms", json={"name": name, "template_id": template_id,
                                            **extra})


def test_a_token_is_shown_once_and_stored_only_as_its_hash(app, as_user):
    r = as_user.http.post("/api/v1/tokens", json={"name": "laptop"},
                          headers={"X-CSRFToken": as_user.csrf()})
    assert r.status_code == 201, r.json
    secret = r.json["secret"]
    assert secret.startswith("lct_") and len(secret) > 40
    assert r.headers["Location"].endswith(f"/api/v1/tokens/{r.json['id']}")
    with app.app_context():
        row = db.session.get(ApiToken, r.json["id"])
        assert row.key_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert secret not in str([getattr(row, c.name) for c in ApiToken.__table__.c])
    listed = as_user.get("/api/v1/tokens").json["items"]
    assert [t["name"] for t in listed] == ["laptop"]
    assert "secret" not in listed[0] and listed[0]["prefix"] == secret[:10]
    # the secret works, and "last used" shows it
    assert ApiClient(app, secret).get("/api/v1/vms").status_code == 200
    used = as_user.get(f"/api/v1/tokens/{r.json['id']}").json
    assert used["last_used_at"] and used["last_used_from"] == "127.0.0.1"


@pytest.mark.parametrize("state, detail", [("expired", "expired"), ("revoked", "revoked")])
def test_an_expired_or_revoked_token_is_refused_with_401(app, user, state, detail):
    r = ApiClient(app, make_token(app, "alice", state=state)).get("/api/v1/vms")
    assert r.status_code == 401 and r.mimetype == PROBLEM
    assert detail in r.json["detail"]
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_no_token_or_a_made_up_one_is_401_in_the_problem_shape(app, user):
    for client in (ApiClient(app), ApiClient(app, "lct_" + "A" * 43),
                   ApiClient(app, "not-a-token")):
        r = client.get("/api/v1/vms")
        assert r.status_code == 401 and r.mimetype == PROBLEM
        assert set(r.json) >= {"type", "title", "status", "detail"}
        assert r.json["status"] == 401


def test_revoking_a_token_stops_it_at_once(app, user):
    secret = make_token(app, "alice")
    client = ApiClient(app, secret)
    token_id = client.get("/api/v1/tokens").json["items"][0]["id"]
    assert client.delete(f"/api/v1/tokens/{token_id}").json["state"] == "revoked"
    assert client.get("/api/v1/vms").status_code == 401


def test_a_read_only_token_reads_but_may_not_change_anything(app, catalog):
    reader = ApiClient(app, make_token(app, "alice", read_only=True))
    assert reader.get("/api/v1/vms").status_code == 200
    r = create(reader, template_id=catalog)
    assert r.status_code == 403 and "read-only" in r.json["detail"]
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(VM.id))) == 0


def test_a_vm_created_read_acted_on_and_deleted_through_a_token(app, catalog, alice):
    r = create(alice, template_id=catalog)
    assert r.status_code == 201, r.json
    url = r.headers["Location"]
    assert url.endswith(f"/api/v1/vms/{r.json['id']}")
    assert r.json["state"] == "running" and r.json["owner"] == "alice"
    got = alice.get(url).json
    assert got["name"] == "web1" and "shutdown" in got["actions"]
    r = alice.post(url + "/actions/poweroff")
    assert r.status_code == 200 and r.json["vm"]["state"] == "shut off"
    r = alice.post(url + "/actions/poweroff")
    assert r.status_code == 409 and r.mimetype == PROBLEM   # already off
    listed = alice.get("/api/v1/vms").json
    assert listed["total"] == 1 and listed["items"][0]["id"] == got["id"]
    assert alice.delete(url).status_code == 200
    assert alice.get(url).status_code == 404


def test_another_users_vm_is_404_the_same_as_one_that_does_not_exist(app, catalog, alice):
    vm_url = create(alice, template_id=catalog).headers["Location"]
    bob = ApiClient(app, make_token(app, "bob"))
    for r in (bob.get(vm_url), bob.post(vm_url + "/actions/reboot"), bob.delete(vm_url),
              bob.get("/api/v1/vms/999999")):
        assert r.status_code == 404 and r.mimetype == PROBLEM
    assert bob.get("/api/v1/vms").json["total"] == 0
    assert alice.get(vm_url).status_code == 200   # nothing happened to it


def test_the_administrators_token_sees_and_acts_on_every_vm(app, catalog, alice):
    vm_url = create(alice, template_id=catalog).headers["Location"]
    boss = ApiClient(app, make_token(app, "admin"))
    assert boss.get("/api/v1/vms").json["total"] == 1
    assert boss.post(vm_url + "/actions/poweroff").status_code == 200


def test_an_invalid_field_is_422_and_named(app, catalog, alice):
    r = alice.post("/api/v1/vms", json={"name": "", "template_id": "x"})
    assert r.status_code == 422 and r.mimetype == PROBLEM
    assert set(r.json["errors"]) == {"name", "template_id"}
    r = create(alice, name="bad name!", template_id=catalog)   # the service's own check
    assert r.status_code == 422 and "name" in r.json["errors"]


def test_a_body_that_is_not_json_is_400(app, catalog, alice):
    r = alice.post("/api/v1/vms", data="{not json", content_type="application/json")
    assert r.status_code == 400 and r.mimetype == PROBLEM


def test_list_pages_with_a_maximum_and_a_next_link(app, catalog, alice):
    with app.app_context():
        from loucloud.models import User
        db.session.execute(db.update(User).values(max_vms=10, max_vcpus=10,
                                                  max_memory_mib=10 ** 5))
        db.session.commit()
    for i in range(5):
        assert create(alice, name=f"vm{i}", template_id=catalog, start=False
                      ).status_code == 201
    first = alice.get("/api/v1/vms?limit=2").json
    assert [v["name"] for v in first["items"]] == ["vm0", "vm1"]
    assert first["total"] == 5 and first["pages"] == 3
    second = alice.get(first["next"]).json
    assert [v["name"] for v in second["items"]] == ["vm2", "vm3"]
    assert alice.get("/api/v1/vms?limit=1000").status_code == 422
    assert alice.get("/api/v1/vms?q=vm4").json["total"] == 1


def test_the_cookie_may_read_but_writes_need_the_csrf_token(app, catalog, as_user):
    assert as_user.get("/api/v1/vms").status_code == 200
    r = as_user.http.post("/api/v1/vms", json={"name": "web1", "template_id": catalog})
    assert r.status_code == 400 and r.mimetype == PROBLEM
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(VM.id))) == 0
    r = as_user.http.post("/api/v1/vms", json={"name": "web1", "template_id": catalog},
                          headers={"X-CSRFToken": as_user.csrf()})
    assert r.status_code == 201


def test_the_rate_limit_answers_429_with_retry_after(app, user):
    app.config["API_RATE_LIMIT_TOKEN"] = "3 per minute"
    client, fresh = ApiClient(app, make_token(app, "alice")), ApiClient(app, make_token(app, "alice"))
    assert [client.get("/api/v1/vms").status_code for _ in range(3)] == [200] * 3
    r = client.get("/api/v1/tokens")    # one count over every route of the API
    assert r.status_code == 429 and r.mimetype == PROBLEM
    assert 0 < int(r.headers["Retry-After"]) <= 60
    assert fresh.get("/api/v1/vms").status_code == 200   # another token counts apart


def test_the_openapi_document_is_served_and_names_every_route(app):
    doc = app.test_client().get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.")
    assert {"/api/v1/vms", "/api/v1/vms/{vm_id}", "/api/v1/tokens"} <= set(doc["paths"])
    assert doc["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    page = app.test_client().get("/api/v1/docs")
    assert page.status_code == 200 and b"swagger-ui-bundle.js" in page.data


def test_a_lost_vm_is_listed_to_its_owner_and_its_record_deleted(app, user, other_user):
    from loucloud.models import LostVM, utcnow
    with app.app_context():
        db.session.add(LostVM(owner_id=user.id, vm_id=77, name="gone-vm", host_name="h9",
                              created_at=utcnow()))
        db.session.commit()
    alice, bob = ApiClient(app, make_token(app, "alice")), ApiClient(app, make_token(app, "bob"))
    [lost] = alice.get("/api/v1/lost-vms").json["items"]
    assert (lost["name"], lost["host_name"], lost["owner"]) == ("gone-vm", "h9", "alice")
    assert bob.get("/api/v1/lost-vms").json["items"] == []
    assert bob.delete(f"/api/v1/lost-vms/{lost['id']}").status_code == 404
    assert alice.delete(f"/api/v1/lost-vms/{lost['id']}").status_code == 200
    assert alice.get("/api/v1/lost-vms").json["items"] == []
