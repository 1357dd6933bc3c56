"""Logging in and out, server-side sessions, and the login throttle.

A login creates a row in ``user_sessions``; the cookie holds only a random key whose
SHA-256 is that row's key. Ending a session deletes the row, so a copied or replayed
cookie is worthless afterwards. Idle sessions end after the time set in Settings.
The throttle counts failures in the database, so every web process sees the same count;
it slows guessing with growing delays and never lets anyone lock a user out.
"""
from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext

from ..extensions import db
from ..models import LoginAttempt, User, UserSession, utcnow
from . import ServiceError
from .console import revoke_for_user
from .passwords import burn_time, verify_password
from .settings import get_settings

log = logging.getLogger(__name__)

BAD_CREDENTIALS = "Wrong user name or password."   # in English; said by bad_credentials()
# last_seen_at is written at most this often, not on every request.
TOUCH_INTERVAL = timedelta(seconds=30)


class LoginRefused(ServiceError):
    status = 401


class LoginThrottled(ServiceError):
    status = 429

    def __init__(self, retry_after: int):
        minutes = max(1, (retry_after + 59) // 60)
        super().__init__(ngettext("Too many failed logins. Try again in %(num)d minute.",
                                  "Too many failed logins. Try again in %(num)d minutes.",
                                  minutes))
        self.retry_after = retry_after


def bad_credentials() -> str:
    """The one refusal of a wrong user name or password, in the reader's language."""
    return _("Wrong user name or password.")


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _delay(failures: int, limit: int) -> timedelta | None:
    """How long after the last failure the next attempt waits: none below ``limit``,
    then the first delay, doubled for each failure beyond it, at most the window."""
    if failures < limit:
        return None
    cfg = current_app.config
    seconds = cfg["LOGIN_FIRST_DELAY_SECONDS"] * 2 ** min(failures - limit, 20)
    return timedelta(seconds=min(seconds, cfg["LOGIN_WINDOW_SECONDS"]))


def _wait(last_failure, delay: timedelta | None) -> int:
    if delay is None or last_failure is None:
        return 0
    return max(0, int((last_failure + delay - utcnow()).total_seconds() + 0.999))


def _failures(*where):
    """(count, newest time) of the failures matching ``where`` in the window."""
    window = timedelta(seconds=current_app.config["LOGIN_WINDOW_SECONDS"])
    return db.session.execute(
        db.select(db.func.count(LoginAttempt.id), db.func.max(LoginAttempt.at)).where(
            LoginAttempt.success.is_(False), LoginAttempt.at > utcnow() - window, *where)
    ).one()


def _retry_after(name: str, address: str) -> int:
    """Seconds this attempt must wait, or 0. Three counts, each with its own limit:
    this account from this address (a success of the account starts it again), this
    address for any account, and the addresses that failed for this account (guessing
    from many places), which does not slow an address the account logged in from
    lately. None of them lets someone elsewhere lock the user out."""
    cfg = current_app.config
    last_ok = db.session.execute(db.select(db.func.max(LoginAttempt.at)).where(
        LoginAttempt.username == name, LoginAttempt.success.is_(True))).scalar()
    since = [LoginAttempt.at > last_ok] if last_ok is not None else []
    count, newest = _failures(LoginAttempt.username == name,
                              LoginAttempt.address == address, *since)
    wait = _wait(newest, _delay(count, cfg["LOGIN_MAX_FAILURES_PER_USER"]))
    count, newest = _failures(LoginAttempt.address == address)
    wait = max(wait, _wait(newest, _delay(count, cfg["LOGIN_MAX_FAILURES_PER_ADDRESS"])))
    known_since = utcnow() - timedelta(days=cfg["LOGIN_KNOWN_ADDRESS_DAYS"])
    known = db.session.execute(db.select(LoginAttempt.id).where(
        LoginAttempt.username == name, LoginAttempt.address == address,
        LoginAttempt.success.is_(True), LoginAttempt.at > known_since).limit(1)).first()
    if known is None:
        window = timedelta(seconds=cfg["LOGIN_WINDOW_SECONDS"])
        addresses, newest = db.session.execute(
            db.select(db.func.count(db.distinct(LoginAttempt.address)),
                      db.func.max(LoginAttempt.at)).where(
                LoginAttempt.username == name, LoginAttempt.success.is_(False),
                LoginAttempt.at > utcnow() - window, *since)).one()
        wait = max(wait, _wait(newest, _delay(addresses,
                                              cfg["LOGIN_MAX_ADDRESSES_PER_USER"])))
    return wait


def _record_attempt(username: str, address: str, success: bool) -> None:
    db.session.add(LoginAttempt(username=username, address=address, success=success))
    # Keep the table small: failures older than a day no longer count for anything,
    # successes only say which addresses an account is known from.
    now = utcnow()
    days = current_app.config["LOGIN_KNOWN_ADDRESS_DAYS"]
    db.session.execute(db.delete(LoginAttempt).where(db.or_(
        db.and_(LoginAttempt.success.is_(False), LoginAttempt.at < now - timedelta(days=1)),
        LoginAttempt.at < now - timedelta(days=days))))


def authenticate(username: str, password: str, address: str) -> User:
    """Check a user name and password. Raises LoginThrottled when this attempt must
    wait (see _retry_after), LoginRefused (one generic message) otherwise."""
    name = (username or "").strip().lower()[:64]
    address = (address or "?")[:45]
    wait = _retry_after(name, address)
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
        raise LoginRefused(bad_credentials())
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
