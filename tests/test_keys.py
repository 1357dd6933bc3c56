"""Users' SSH public keys: only real keys of known types, alone on their line, kept per
user, refused clearly otherwise (page, service and command line)."""
from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from loucloud.extensions import db
from loucloud.models import SshKey, User
from loucloud.services import FieldError
from loucloud.services import keys as key_service
from tests.conftest import Client
from tests.factories import make_user, new_public_key


def _openssh(private) -> str:
    return private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                             serialization.PublicFormat.OpenSSH).decode()


ED25519 = new_public_key("me@laptop")
RSA_1024 = _openssh(rsa.generate_private_key(public_exponent=65537, key_size=1024))
RSA_2048 = _openssh(rsa.generate_private_key(public_exponent=65537, key_size=2048))
ECDSA = _openssh(ec.generate_private_key(ec.SECP256R1()))
KIND, BLOB = ED25519.split()[:2]


# Fixed ids: the keys are made anew by each process, and the suite's two workers
# (tests/support/workers.py) must collect the same tests.
@pytest.mark.parametrize("line", [ED25519, RSA_2048 + " work", ECDSA, f"  {ED25519}  "],
                         ids=["ed25519", "rsa-2048", "ecdsa", "ed25519-in-spaces"])
def test_real_keys_are_taken(ctx, line):
    user = make_user("alice")
    key = key_service.add_key(db.session.get(User, user.id), "", line)
    assert key.key == " ".join(line.split()) and key.fingerprint.startswith("SHA256:")


@pytest.mark.parametrize("line, why", [
    ("", "Paste a public key"),
    ("hello world", "Use a key of type"),
    (f'command="rm -rf /" {ED25519}', "Options before the key"),
    (f"no-pty,from=\"10.0.0.1\" {ED25519}", "Options before the key"),
    (f"{KIND}", "data is missing"),
    (f"{KIND} not*base64", "not valid base64"),
    (f"{KIND} {base64.b64encode(b'garbage').decode()}", "not a valid public key"),
    pytest.param(f"ssh-rsa {BLOB}", "not a valid public key",  # an ed25519 blob, said rsa
                 id="ed25519-blob-said-rsa"),
    (RSA_1024, "at least 2048 bits"),
    (f"{ED25519}\n{ED25519}", "one key on one line"),
    (f"{KIND} {BLOB} comment\x01with control", "200 plain characters"),
    (f"{KIND} {BLOB} " + "c" * 201, "200 plain characters"),
    ("ssh-ed25519 " + "A" * 9000, "at most 8192"),
    ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "Use a key of type"),
])
def test_what_is_not_a_key_is_refused_and_nothing_kept(ctx, line, why):
    user = make_user("alice")
    with pytest.raises(FieldError) as info:
        key_service.add_key(db.session.get(User, user.id), "x", line)
    assert why in str(info.value) and info.value.field == "key"
    assert db.session.execute(db.select(db.func.count(SshKey.id))).scalar() == 0


def test_the_same_key_twice_is_refused_but_another_user_may_have_it(ctx):
    alice, bob = make_user("alice"), make_user("bob")
    key_service.add_key(db.session.get(User, alice.id), "a", ED25519)
    with pytest.raises(FieldError, match="added this key already"):
        key_service.add_key(db.session.get(User, alice.id), "b", ED25519)
    key_service.add_key(db.session.get(User, bob.id), "b", ED25519)


def test_fingerprint_is_the_one_ssh_keygen_prints():
    # ssh-keygen -lf of this key printed SHA256:qruI73uhnSMx6SL8EFGhIjidPPAKbC3yA0PlKH5VUXg
    blob = "AAAAC3NzaC1lZDI1NTE5AAAAIDC5wJSt6wE0Y5faldn8B4qPtVwBfdrVzOEDLUOCpQWl"
    assert key_service.fingerprint(blob) == "SHA256:qruI73uhnSMx6SL8EFGhIjidPPAKbC3yA0PlKH5VUXg"


def test_profile_page_adds_lists_and_deletes_keys(app, as_user):
    response = as_user.post("/profile/keys", {"name": "laptop", "key": ED25519})
    assert response.status_code == 302
    page = as_user.get("/profile").get_data(as_text=True)
    assert 'data-key="laptop"' in page and "SHA256:" in page
    with app.app_context():
        key_id = db.session.execute(db.select(SshKey.id)).scalar()
    bob = make_bob(app)
    assert bob.post(f"/profile/keys/{key_id}/delete", {}).status_code == 404  # not his
    assert as_user.post(f"/profile/keys/{key_id}/delete", {}).status_code == 302
    assert 'data-key="laptop"' not in as_user.get("/profile").get_data(as_text=True)


def test_a_bad_key_on_the_page_is_a_form_error(as_user):
    response = as_user.post("/profile/keys", {"name": "x", "key": f'command="id" {ED25519}'})
    assert response.status_code == 400
    assert "Options before the key" in response.get_data(as_text=True)


def make_bob(app) -> Client:
    with app.app_context():
        make_user("bob")
    bob = Client(app)
    bob.login("bob")
    return bob
