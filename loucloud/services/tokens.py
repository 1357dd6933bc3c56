"""Personal API tokens: made on the Profile page or by `manage.py tokens create`, shown
once, stored only as their SHA-256 (a token is 256 random bits: no slow hash needed, and
a lookup by hash costs one indexed read per request), read-only or read-write, with an
optional expiry, revocable, "last used" kept to the minute."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask_babel import gettext as _

from ..extensions import db
from ..models import User, utcnow
from ..models.tokens import ApiToken
from . import FieldError, NotFound, ServiceError, transaction

SCHEME = "lct_"           # every LouCloud token starts so: secret scanners can find them
MAX_ACTIVE = 50           # live tokens per user
MAX_DAYS = 3650
TOUCH_EVERY = timedelta(minutes=1)   # "last used" written at most this often
SECRET_LENGTH = len(SCHEME) + 43     # token_urlsafe(32)


class TokenRefused(ServiceError):
    """No such token, or one that may not be used (HTTP 401)."""

    status = 401


@dataclass
class NewToken:
    token: ApiToken
    secret: str   # shown once, never stored


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@transaction
def create_token(user: User, name: str, *, read_only: bool = False,
                 expires_days: int | None = None) -> NewToken:
    name = (name or "").strip()
    errors = {}
    if not name or len(name) > 64 or not name.isprintable():
        errors["name"] = _("Give the token a name of 1 to 64 printable characters.")
    if expires_days is not None and not 1 <= expires_days <= MAX_DAYS:
        errors["expires_days"] = _("A token expires after 1 to %(max)d days, or never.",
                                   max=MAX_DAYS)
    if errors:
        raise FieldError.of(errors)
    now = utcnow()
    live = db.session.scalar(db.select(db.func.count(ApiToken.id)).where(
        ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None),
        db.or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now)))
    if live >= MAX_ACTIVE:
        raise ServiceError(_("%(name)s already has %(max)d live tokens: revoke one first.",
                             name=user.username, max=MAX_ACTIVE))
    secret = SCHEME + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, prefix=secret[:len(SCHEME) + 6],
                     key_hash=_hash(secret), read_only=bool(read_only), created_at=now,
                     expires_at=now + timedelta(days=expires_days) if expires_days else None)
    db.session.add(token)
    db.session.commit()
    return NewToken(token, secret)


def tokens_of(user: User) -> list[ApiToken]:
    """The user's tokens, newest first (revoked and expired ones too: they say why a
    script stopped working)."""
    return list(db.session.scalars(db.select(ApiToken).where(ApiToken.user_id == user.id)
                                   .order_by(ApiToken.id.desc())))


def token_for(actor: User, token_id: int) -> ApiToken:
    """One of the actor's own tokens (an administrator may see anyone's)."""
    token = db.session.get(ApiToken, token_id)
    if token is None or (token.user_id != actor.id and not actor.is_admin):
        raise NotFound()
    return token


@transaction
def revoke_token(actor: User, token_id: int) -> ApiToken:
    token = token_for(actor, token_id)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.session.commit()
    return token


def authenticate(secret: str, address: str | None) -> ApiToken:
    """The live token ``secret`` is, with its user; TokenRefused otherwise (the message
    says why, never whose the token is)."""
    if not secret.startswith(SCHEME) or len(secret) != SECRET_LENGTH or not secret.isascii():
        raise TokenRefused(_("This is not a LouCloud API token."))
    token = db.session.execute(db.select(ApiToken).where(ApiToken.key_hash == _hash(secret))
                               ).scalar_one_or_none()
    if token is None:
        raise TokenRefused(_("This token is unknown or was deleted."))
    now = utcnow()
    state = token.state(now)
    if state != "active":
        raise TokenRefused(_("This token is revoked.") if state == "revoked" else
                           _("This token is expired."))
    if not token.user.active:
        raise TokenRefused(_("The account of this token is disabled."))
    if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY \
            or token.last_used_from != (address or "")[:45]:
        token.last_used_at, token.last_used_from = now, (address or "")[:45]
        db.session.commit()
    return token
