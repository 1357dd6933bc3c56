"""First-boot data for cloud images (cloud-init's NoCloud source): meta-data and
user-data in a small ISO 9660 image labelled "cidata", built in Python (pycdlib).

What goes in: the VM's hostname, its owner's SSH public keys, the login password of the
image's default user as a SHA-512 crypt hash (never the password itself), and the boot
jobs (runcmd / write_files / packages) merged in order."""
from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass, field

import pycdlib
import yaml
from flask_babel import gettext as _
from passlib.hash import sha512_crypt

from . import FieldError

# What a boot job may say: commands to run, files to write, packages to install.
BOOT_JOB_KEYS = {"runcmd": list, "write_files": list, "packages": list, "bootcmd": list}
BOOT_JOB_MAX_BYTES = 16 * 1024
SEED_MAX_BYTES = 256 * 1024


@dataclass(frozen=True)
class Seed:
    instance_id: str
    hostname: str
    login_user: str = ""
    password_hash: str | None = None
    ssh_keys: tuple[str, ...] = ()
    jobs: tuple[tuple[str, dict], ...] = field(default_factory=tuple)  # (name, parsed)


def hostname_for(name: str) -> str:
    """The guest's hostname from a VM's name: an RFC 1123 label (ASCII letters, digits
    and '-', at most 63), what /etc/hostname, DHCP and every resolver take.

    An ASCII name keeps its letters and digits ('_', '.' become '-'). A name in another
    language becomes its IDNA form (RFC 3492 Punycode of the lower-case label behind
    "xn--": 实验机-1 is xn---1-ne1d935b3q6d), which idna tools, browsers and resolvers
    show back as 实验机-1. Not a transliteration: that would need a large table (Unidecode,
    GPL) and still read Japanese kanji as Chinese pinyin; Punycode needs nothing beyond
    Python, fits every script and keeps names apart (but for case and punctuation:
    a_b and a.b are both a-b, as for ASCII names). A label over 63 is the IDNA form of
    the longest start of the name that fits. The domain's <title> and LouCloud's pages
    keep the Unicode name."""
    if name.isascii():
        host = re.sub(r"[^A-Za-z0-9-]+", "-", name).strip("-")[:63].strip("-")
        return host or "vm"
    label = re.sub("-{2,}", "-", "".join(
        c if unicodedata.category(c)[0] in "LNM" else "-" for c in name.lower())).strip("-")
    while not label.isascii():
        host = "xn--" + label.encode("punycode").decode("ascii")
        if len(host) <= 63:
            return host
        label = label[:-1].rstrip("-")
    return label[:63].strip("-") or "vm"


def hash_password(password: str) -> str:
    """The crypt(3) SHA-512 hash cloud-init hands to chpasswd: the seed never holds the
    password itself."""
    return sha512_crypt.using(rounds=5000).hash(password)


def parse_boot_job(text: str) -> dict:
    """Check a boot job's YAML: a mapping of runcmd / write_files / packages / bootcmd
    lists, at most 16 KiB. Raises FieldError (field "script") saying what is wrong."""
    raw = (text or "").encode()
    if not raw.strip():
        raise FieldError(_("Write at least one of runcmd, write_files, packages or "
                           "bootcmd."), "script")
    if len(raw) > BOOT_JOB_MAX_BYTES:
        raise FieldError(_("Keep a boot job under %(size)s KiB.",
                           size=BOOT_JOB_MAX_BYTES // 1024), "script")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        if mark:
            raise FieldError(_("This is not valid YAML (line %(line)s, column %(column)s).",
                               line=mark.line + 1, column=mark.column + 1),
                             "script") from None
        raise FieldError(_("This is not valid YAML."), "script") from None
    if not isinstance(data, dict) or not data:
        raise FieldError(_("Write a YAML mapping such as 'runcmd: [[touch, /tmp/done]]'."),
                         "script")
    for key, value in data.items():
        if key not in BOOT_JOB_KEYS:
            raise FieldError(_("'%(key)s' is not allowed; use %(keys)s.", key=key,
                               keys=", ".join(sorted(BOOT_JOB_KEYS))), "script")
        if not isinstance(value, BOOT_JOB_KEYS[key]):
            raise FieldError(_("'%(key)s' must be a list.", key=key), "script")
    return data


def user_data(seed: Seed) -> dict:
    data: dict = {"hostname": seed.hostname, "fqdn": seed.hostname,
                  "preserve_hostname": False, "manage_etc_hosts": True}
    if seed.ssh_keys:
        data["ssh_authorized_keys"] = list(seed.ssh_keys)
    if seed.password_hash and seed.login_user:
        data["chpasswd"] = {"expire": False, "users": [
            {"name": seed.login_user, "password": seed.password_hash, "type": "hash"}]}
        data["ssh_pwauth"] = True
    for _name, job in seed.jobs:
        for key, value in job.items():
            data.setdefault(key, []).extend(value)
    return data


def build_iso(seed: Seed) -> bytes:
    """The NoCloud seed ISO of ``seed``."""
    meta = yaml.safe_dump({"instance-id": seed.instance_id,
                           "local-hostname": seed.hostname}, sort_keys=False).encode()
    user = ("#cloud-config\n" + yaml.safe_dump(user_data(seed), sort_keys=False,
                                               allow_unicode=True)).encode()
    if len(user) > SEED_MAX_BYTES:
        raise FieldError(_("The first-boot data is too large; attach fewer boot jobs."))
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident="cidata")
    for iso_name, name, data in (("/METADATA.;1", "meta-data", meta),
                                 ("/USERDATA.;1", "user-data", user)):
        iso.add_fp(io.BytesIO(data), len(data), iso_name, rr_name=name,
                   joliet_path=f"/{name}")
    out = io.BytesIO()
    iso.write_fp(out)
    iso.close()
    return out.getvalue()


def read_iso(data: bytes) -> dict[str, str]:
    """The files of a seed ISO by name (for tests and for showing what a VM was given)."""
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(data))
    files = {}
    try:
        for name in ("meta-data", "user-data"):
            out = io.BytesIO()
            iso.get_file_from_iso_fp(out, rr_path=f"/{name}")
            files[name] = out.getvalue().decode()
    finally:
        iso.close()
    return files
