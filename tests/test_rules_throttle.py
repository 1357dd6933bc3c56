"""The login throttle (services/auth.py): how many failures lock what, for how long,
and what the login page says about it. Failures older than a test needs are written
straight into the table, as the throttle reads them from there."""
from __future__ import annotations

from datetime import timedelta

import pytest

from loucloud.extensions import db
from loucloud.models import LoginAttempt, User, utcnow
from loucloud.services.auth import LoginThrottled
from tests.conftest import PASSWORD, Client
from tests.factories import make_user

ADDRESS = "127.0.0.1"  # the test client's


def failures(app, username: str, *ages: timedelta, address: str = ADDRESS) -> None:
    """Failed logins of ``username`` that happened ``ages`` ago."""
    with app.app_context():
        now = utcnow()
        for age in ages:
            db.session.add(LoginAttempt(username=username, address=address, success=False,
                                        at=now - age))
        db.session.commit()


def login(app, username: str, password: str = PASSWORD, address: str = ADDRESS):
    client = Client(app)
    client.http.environ_base["REMOTE_ADDR"] = address
    return client.login(username, password)


def told(response) -> str:
    """The throttle's message on the login page."""
    text = response.get_data(as_text=True)
    start = text.index("Too many failed logins.")
    return text[start:text.index(".", start + len("Too many failed logins.")) + 1]


@pytest.mark.parametrize("seconds,message", [
    (1, "1 minute"), (59, "1 minute"), (60, "1 minute"), (61, "2 minutes"),
    (119, "2 minutes"), (120, "2 minutes"), (121, "3 minutes"), (900, "15 minutes")])
def test_the_wait_is_said_in_whole_minutes_rounded_up(seconds, message):
    refusal = LoginThrottled(seconds)
    assert str(refusal) == f"Too many failed logins. Try again in {message}."
    assert refusal.status == 429


def test_five_failures_lock_the_account_for_the_whole_window(app, user):
    for _ in range(5):
        assert login(app, "alice", "wrong password!").status_code == 401
    response = login(app, "alice")
    assert response.status_code == 429
    assert told(response) == "Too many failed logins. Try again in 15 minutes."


def test_the_lock_ends_when_the_fifth_newest_failure_leaves_the_window(app, user):
    """Failures 10 minutes ago and just now: five in the window, so locked, until the
    oldest of those five is 15 minutes old: 5 minutes from now."""
    failures(app, "alice", timedelta(minutes=10), *[timedelta(seconds=1)] * 4)
    response = login(app, "alice")
    assert response.status_code == 429
    assert told(response) == "Too many failed logins. Try again in 5 minutes."


def test_failures_beyond_the_fifth_newest_do_not_shorten_the_lock(app, user):
    failures(app, "alice", timedelta(minutes=14), timedelta(minutes=14),
             *[timedelta(minutes=1)] * 5)
    response = login(app, "alice")
    assert told(response) == "Too many failed logins. Try again in 14 minutes."


def test_four_failures_lock_nothing(app, user):
    failures(app, "alice", *[timedelta(seconds=1)] * 4)
    assert login(app, "alice").status_code == 302


def test_failures_outside_the_window_lock_nothing(app, user):
    failures(app, "alice", *[timedelta(minutes=15, seconds=5)] * 5)
    assert login(app, "alice").status_code == 302


def test_a_disabled_accounts_logins_count_as_failures(app):
    with app.app_context():
        make_user("carol", active=False)
    for _ in range(5):
        assert login(app, "carol").status_code == 401
    assert login(app, "carol").status_code == 429


def test_twenty_failures_lock_the_address_for_every_account(app, user):
    for i in range(20):
        assert login(app, f"guess{i}", "whatever password").status_code == 401
    response = login(app, "alice")
    assert response.status_code == 429
    assert told(response) == "Too many failed logins. Try again in 15 minutes."
    # The same account from another address is not locked: alice is not the culprit.
    assert login(app, "alice", address="192.0.2.7").status_code == 302


def test_another_accounts_success_does_not_unlock_this_one(app, user, other_user):
    for _ in range(5):
        login(app, "alice", "wrong password!")
    assert login(app, "bob").status_code == 302
    assert login(app, "alice").status_code == 429


def test_a_success_does_not_reset_the_address_count(app, user):
    for i in range(19):
        failures(app, f"guess{i}", timedelta(seconds=5))
    assert login(app, "alice").status_code == 302
    assert login(app, "guess19", "whatever password").status_code == 401  # the 20th
    assert login(app, "alice").status_code == 429


def test_attempts_are_kept_a_day_then_removed(app, user):
    failures(app, "alice", timedelta(hours=25), timedelta(hours=23))
    assert login(app, "alice").status_code == 302
    with app.app_context():
        kept = sorted((a.success, round((utcnow() - a.at) / timedelta(hours=1)))
                      for a in db.session.execute(db.select(LoginAttempt)).scalars())
    assert kept == [(False, 23), (True, 0)]


def test_each_attempt_is_recorded_with_name_address_and_outcome(app, user):
    login(app, "ALICE ", "wrong password!", address="198.51.100.9")
    login(app, "alice", address="198.51.100.9")
    with app.app_context():
        rows = [(a.username, a.address, a.success)
                for a in db.session.execute(db.select(LoginAttempt).order_by(LoginAttempt.id))
                .scalars()]
        last_login = db.session.get(User, user.id).last_login_at
    assert rows == [("alice", "198.51.100.9", False), ("alice", "198.51.100.9", True)]
    assert last_login is not None and utcnow() - last_login < timedelta(minutes=1)
