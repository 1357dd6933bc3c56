"""First-boot data: the seed ISO cloud-init reads (label cidata, meta-data, user-data),
with the hostname, the owner's keys, the password only as a SHA-512 crypt hash, and
boot jobs checked and merged."""
from __future__ import annotations

import pycdlib
import pytest
import yaml
from passlib.hash import sha512_crypt

from loucloud.services import FieldError, cloudinit

PASSWORD = "a fine secret 42"


def seed(**kw) -> cloudinit.Seed:
    base = dict(instance_id="6f1c7c9e-2b8e-4a35-9d43-0b4f3c1b2a10", hostname="web-1",
                login_user="debian", password_hash=cloudinit.hash_password(PASSWORD),
                ssh_keys=("ssh-ed25519 AAAA me@x",))
    base.update(kw)
    return cloudinit.Seed(**base)


def test_the_iso_is_a_nocloud_seed():
    data = cloudinit.build_iso(seed())
    iso = pycdlib.PyCdlib()
    import io
    iso.open_fp(io.BytesIO(data))
    assert iso.pvd.volume_identifier.decode().strip() == "cidata"
    iso.close()
    files = cloudinit.read_iso(data)
    meta = yaml.safe_load(files["meta-data"])
    assert meta == {"instance-id": "6f1c7c9e-2b8e-4a35-9d43-0b4f3c1b2a10",
                    "local-hostname": "web-1"}
    assert files["user-data"].startswith("#cloud-config\n")
    user = yaml.safe_load(files["user-data"])
    assert user["hostname"] == "web-1" and user["ssh_authorized_keys"] == ["ssh-ed25519 AAAA me@x"]
    [entry] = user["chpasswd"]["users"]
    assert entry["name"] == "debian" and entry["type"] == "hash"
    assert sha512_crypt.verify(PASSWORD, entry["password"])
    assert user["ssh_pwauth"] is True


def test_the_seed_never_holds_the_password():
    data = cloudinit.build_iso(seed())
    assert PASSWORD.encode() not in data
    assert b"$6$" in data


def test_without_password_or_keys_nothing_about_them():
    user = yaml.safe_load(cloudinit.read_iso(cloudinit.build_iso(
        seed(password_hash=None, ssh_keys=())))["user-data"])
    assert "chpasswd" not in user and "ssh_authorized_keys" not in user


@pytest.mark.parametrize("name, host", [("web-1", "web-1"), ("a_b.c", "a-b-c"),
                                        ("...", "vm"), ("x" * 64, "x" * 63)])
def test_hostnames_from_vm_names(name, host):
    assert cloudinit.hostname_for(name) == host


def test_boot_jobs_are_merged_in_order():
    jobs = (("one", cloudinit.parse_boot_job("runcmd: [[touch, /a]]\npackages: [htop]")),
            ("two", cloudinit.parse_boot_job("runcmd:\n  - echo b\nwrite_files:\n"
                                             "  - {path: /etc/x, content: y}")))
    user = cloudinit.user_data(seed(jobs=jobs))
    assert user["runcmd"] == [["touch", "/a"], "echo b"]
    assert user["packages"] == ["htop"] and user["write_files"][0]["path"] == "/etc/x"


@pytest.mark.parametrize("text, why", [
    ("", "at least one"),
    ("runcmd: [", "not valid YAML"),
    ("- a\n- b", "YAML mapping"),
    ("users: [{name: evil}]", "'users' is not allowed"),
    ("chpasswd: {list: 'root:x'}", "'chpasswd' is not allowed"),
    ("runcmd: echo hi", "must be a list"),
    ("runcmd: [" + "'x'," * 5000 + "]", "under 16 KiB"),
    ("!!python/object/apply:os.system ['id']", "not valid YAML"),
])
def test_bad_boot_jobs_are_refused(text, why):
    with pytest.raises(FieldError) as info:
        cloudinit.parse_boot_job(text)
    assert why in str(info.value) and info.value.field == "script"
