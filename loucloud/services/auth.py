"""Logging in and out, server-side sessions, and the login throttle.

A login creates a row in ``user_sessions``; the cookie holds only a random key whose
SHA-256 is that row's key. Ending a session deletes the row, so a copied or replayed
cookie is worthless afterwards. Idle sessions end after the time set in Settings.
The throttle counts failures in the database, so every web process sees the same count.
"""
from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta

from flask import current_app

from ..extensions import db
from ..models import LoginAttempt, User, UserSession, utcnow
from . import ServiceError
from .console import revoke_for_user
from .passwords import burn_time, verify_password
from .settings import get_settings

log = logging.getLogger(__name__)

BAD_CREDENTIALS = "Wrong user name or password."
# last_seen_at is written at most this often, not on every request.
TOUCH_INTERVAL = timedelta(seconds=30)


class LoginRefused(ServiceError):
    status = 401


class LoginThrottled(ServiceError):
    status = 429

    def __init__(self, retry_after: int):
        minutes = max(1, (retry_after + 59) // 60)
        super().__init__(f"Too many failed logins. Try again in {minutes} minute"
                         f"{'s' if minutes > 1 else ''}.")
        self.retry_after = retry_after


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _retry_after(column, value: str, limit: int) -> int:
    """Seconds until fewer than ``limit`` failures remain in the window, or 0."""
    cfg = current_app.config
    window = timedelta(seconds=cfg["LOGIN_WINDOW_SECONDS"])
    since = utcnow() - window
    if column is LoginAttempt.username:
        last_ok = db.session.execute(
            db.select(db.func.max(LoginAttempt.at)).where(
                LoginAttempt.username == value, LoginAttempt.success.is_(True))).scalar()
        if last_ok is not None and last_ok > since:
            since = last_ok
    failures = db.session.execute(
        db.select(LoginAttempt.at).where(column == value, LoginAttempt.success.is_(False),
                                         LoginAttempt.at > since)
        .order_by(LoginAttempt.at.desc()).limit(limit)).scalars().all()
    if len(failures) < limit:
        return 0
    oldest_counted = failures[-1]
    return max(1, int((oldest_counted + window - utcnow()).total_seconds()))


def _record_attempt(username: str, address: str, success: bool) -> None:
    db.session.add(LoginAttempt(username=username, address=address, success=success))
    # Keep the table small: attempts older than a day no longer count for anything.
    db.session.execute(db.delete(LoginAttempt).where(
        LoginAttempt.at < utcnow() - timedelta(days=1)))


def authenticate(username: str, password: str, address: str) -> User:
    """Check a user name and password. Raises LoginThrottled when this account or this
    address failed too often lately, LoginRefused (one generic message) otherwise."""
    cfg = current_app.config
    name = (username or "").strip().lower()[:64]
    address = (address or "?")[:45]
    wait = max(_retry_after(LoginAttempt.username, name, cfg["LOGIN_MAX_FAILURES_PER_USER"]),
               _retry_after(LoginAttempt.address, address,
                            cfg["LOGIN_MAX_FAILURES_PER_ADDRESS"]))
    if wait:
        log.warning("login throttled for user %r from %s", name, address)
        raise LoginThrottled(wait)

    user = db.session.execute(
        db.select(User).where(db.func.lower(User.username) == name)).scalar_one_or_none()
    ok = False
    if user is None:
        burn_time(password)
    else:
        ok, new_hash = verify_password(user.password_hash, password)
        if ok and new_hash:
            user.password_hash = new_hash
    if ok and not user.active:
        ok = False
    _record_attempt(name, address, ok)
    if not ok:
        db.session.commit()
        log.info("failed login for user %r from %s", name, address)
        raise LoginRefused(BAD_CREDENTIALS)
    user.last_login_at = utcnow()
    db.session.commit()
    return user


def start_session(user: User, address: str | None, user_agent: str | None) -> str:
    """Create a server-side session for ``user``; returns its key (for the cookie) and
    sets it on the user object so that Flask-Login stores it."""
    key = secrets.token_urlsafe(32)
    db.session.add(UserSession(key_hash=_hash_key(key), user_id=user.id,
                               address=(address or "")[:45],
                               user_agent=(user_agent or "")[:255]))
    db.session.commit()
    user.login_session_key = key
    return key


def load_session(key: str) -> User | None:
    """Flask-Login's user loader: the user of a live session, or None (which logs out).
    Ends the session if it was idle too long or its user was disabled."""
    if not key or len(key) > 100:
        return None
    row = db.session.execute(
        db.select(UserSession).where(UserSession.key_hash == _hash_key(key))
    ).scalar_one_or_none()
    if row is None:
        return None
    now = utcnow()
    idle = timedelta(minutes=get_settings().session_idle_minutes)
    user = row.user
    if now - row.last_seen_at > idle or not user.active:
        db.session.delete(row)
        db.session.commit()
        return None
    if now - row.last_seen_at > TOUCH_INTERVAL:
        row.last_seen_at = now
        db.session.commit()
    user.login_session_key = key
    return user


def end_session(key: str | None) -> None:
    if key:
        db.session.execute(db.delete(UserSession).where(UserSession.key_hash == _hash_key(key)))
        db.session.commit()


def log_out(user: User, key: str | None) -> None:
    """End this session of ``user`` and the console links the user holds."""
    revoke_for_user(user.id)
    end_session(key)


def end_sessions_of(user: User, keep_key: str | None = None) -> int:
    """End every session of ``user`` except ``keep_key``'s. Does not commit."""
    stmt = db.delete(UserSession).where(UserSession.user_id == user.id)
    if keep_key:
        stmt = stmt.where(UserSession.key_hash != _hash_key(keep_key))
    return db.session.execute(stmt).rowcount or 0
