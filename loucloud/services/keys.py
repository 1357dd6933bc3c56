"""Users' SSH public keys: checked (a real key of a known type, no options that would
change what the key may do, a sane size), kept per user, put into the VMs he creates."""
from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key
from flask_babel import gettext as _

from ..extensions import db
from ..models import INT64_MAX, SshKey, User
from . import FieldError, NotFound, transaction

log = logging.getLogger(__name__)

KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
             "ecdsa-sha2-nistp521")
MAX_LINE = 8192
MAX_KEYS = 20
MIN_RSA_BITS = 2048
NAME_MAX = 64
_COMMENT_RE = re.compile(r"^[\x20-\x7e]{0,200}$")


def parse_key(line: str) -> tuple[str, str, str]:
    """(type, base64 blob, comment) of one OpenSSH public key line. Raises FieldError
    (field "key") saying what is wrong with it."""
    line = (line or "").strip()
    if not line:
        raise FieldError(_("Paste a public key such as 'ssh-ed25519 AAAA… you@laptop'."), "key")
    if len(line) > MAX_LINE:
        raise FieldError(_("A public key line is at most %(max)d characters.", max=MAX_LINE),
                         "key")
    if "\n" in line or "\r" in line or "\x00" in line:
        raise FieldError(_("Paste one key on one line."), "key")
    parts = line.split(None, 2)
    if parts[0] not in KEY_TYPES:
        if any(t in line for t in KEY_TYPES):
            raise FieldError(_("Options before the key (command=, from=, no-pty…) are not "
                               "accepted: paste the key alone."), "key")
        raise FieldError(_("Use a key of type %(types)s (the .pub file).",
                           types=", ".join(KEY_TYPES)), "key")
    if len(parts) < 2:
        raise FieldError(_("The key's data is missing after its type."), "key")
    kind, blob = parts[0], parts[1]
    comment = parts[2].strip() if len(parts) > 2 else ""
    if not _COMMENT_RE.match(comment):
        raise FieldError(_("The key's comment may hold up to 200 plain characters."), "key")
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        raise FieldError(_("The key's data is not valid base64."), "key") from None
    try:
        key = load_ssh_public_key(f"{kind} {blob}".encode())
    except (ValueError, UnsupportedAlgorithm):
        raise FieldError(_("This is not a valid public key of its type."), "key") from None
    if raw[4:4 + len(kind)] != kind.encode():
        raise FieldError(_("The key's type does not match its data."), "key")
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise FieldError(_("RSA keys need at least %(bits)d bits.", bits=MIN_RSA_BITS), "key")
    return kind, blob, comment


def fingerprint(blob: str) -> str:
    """SHA256:… as ssh-keygen -l prints it."""
    digest = hashlib.sha256(base64.b64decode(blob)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


@transaction
def add_key(user: User, name: str, line: str) -> SshKey:
    """Keep a new public key for ``user``. Raises FieldError."""
    kind, blob, comment = parse_key(line)
    name = (name or "").strip() or comment or kind
    if len(name) > NAME_MAX or any(ord(c) < 32 for c in name):
        raise FieldError(_("Use at most %(max)d plain characters for the name.", max=NAME_MAX),
                         "name")
    fp = fingerprint(blob)
    count = db.session.execute(db.select(db.func.count(SshKey.id))
                               .where(SshKey.user_id == user.id)).scalar()
    if count >= MAX_KEYS:
        raise FieldError(_("You have %(max)d keys already; delete one first.", max=MAX_KEYS),
                         "key")
    if db.session.execute(db.select(SshKey.id).where(SshKey.user_id == user.id,
                                                     SshKey.fingerprint == fp)).first():
        raise FieldError(_("You have added this key already."), "key")
    key = SshKey(user_id=user.id, name=name[:NAME_MAX],
                 key=" ".join(p for p in (kind, blob, comment) if p), fingerprint=fp)
    db.session.add(key)
    db.session.commit()
    log.info("SSH key %s added for %s", fp, user.username)
    return key


def keys_of(user: User) -> list[SshKey]:
    return db.session.execute(db.select(SshKey).where(SshKey.user_id == user.id)
                              .order_by(SshKey.created_at, SshKey.id)).scalars().all()


def key_of(user: User, key_id: int) -> SshKey:
    """One of the user's keys. Raises NotFound (also for another user's key)."""
    key = db.session.get(SshKey, key_id) if 0 < key_id <= INT64_MAX else None
    if key is None or key.user_id != user.id:
        raise NotFound()
    return key


@transaction
def delete_key(key: SshKey) -> None:
    db.session.delete(key)
    db.session.commit()
