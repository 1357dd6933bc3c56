"""Password hashing with Argon2id; the parameters come from the app config."""
from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_babel import gettext as _

MIN_LENGTH = 10
MAX_LENGTH = 256  # hashing cost is bounded; longer input is refused, not truncated


def _hasher() -> PasswordHasher:
    cfg = current_app.config
    return PasswordHasher(time_cost=cfg["PASSWORD_TIME_COST"],
                          memory_cost=cfg["PASSWORD_MEMORY_KIB"],
                          parallelism=cfg["PASSWORD_PARALLELISM"], type=Type.ID)


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(stored_hash: str, password: str) -> tuple[bool, str | None]:
    """Return (matches, new_hash). ``new_hash`` is set when the stored hash used weaker
    parameters than the current ones and should be replaced."""
    hasher = _hasher()
    try:
        hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False, None
    if hasher.check_needs_rehash(stored_hash):
        return True, hasher.hash(password)
    return True, None


_dummy_hash: dict[tuple, str] = {}


def burn_time(password: str) -> None:
    """Spend what a real verification costs, so that an unknown user name and a wrong
    password take the same time."""
    cfg = current_app.config
    key = (cfg["PASSWORD_TIME_COST"], cfg["PASSWORD_MEMORY_KIB"], cfg["PASSWORD_PARALLELISM"])
    if key not in _dummy_hash:
        _dummy_hash[key] = _hasher().hash("not a password of anybody")
    verify_password(_dummy_hash[key], password)


def password_problem(password: str, username: str = "") -> str | None:
    """Why a new password is not acceptable, or None."""
    if len(password) < MIN_LENGTH:
        return _("Use at least %(min)d characters.", min=MIN_LENGTH)
    if len(password) > MAX_LENGTH:
        return _("Use at most %(max)d characters.", max=MAX_LENGTH)
    if username and password.lower() == username.lower():
        return _("The password must not be the user name.")
    if len(set(password)) < 4:
        return _("The password is too simple: use more different characters.")
    return None
