"""The login throttle (services/auth.py): how many failures slow what, for how long,
and what the login page says about it; and that nobody can lock a user out. Failures older than a test needs are written
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


def test_five_failures_from_one_address_slow_that_account_there_only(app, user):
    for _ in range(5):
        assert login(app, "alice", "wrong password!").status_code == 401
    response = login(app, "alice")
    assert response.status_code == 429
    assert told(response) == "Too many failed logins. Try again in 1 minute."  # 30 s
    assert login(app, "alice", address="192.0.2.7").status_code == 302


@pytest.mark.parametrize("count,message", [
    (5, "1 minute"), (6, "1 minute"), (7, "2 minutes"), (8, "4 minutes"),
    (9, "8 minutes"), (10, "15 minutes"), (30, "15 minutes")])
def test_each_failure_past_the_fifth_doubles_the_wait_up_to_the_window(app, user, count,
                                                                       message):
    failures(app, "alice", *[timedelta(seconds=1)] * count)
    response = login(app, "alice")
    assert response.status_code == 429
    assert told(response) == f"Too many failed logins. Try again in {message}."


def test_the_wait_runs_from_the_newest_failure(app, user):
    failures(app, "alice", *[timedelta(minutes=5)] * 4, timedelta(seconds=31))
    assert login(app, "alice").status_code == 302


def test_fifty_failures_from_one_address_do_not_lock_the_user_out(app, user):
    """Someone elsewhere guesses alice's password 50 times: that address is slowed to
    one guess per window, and alice logs in at once from her own."""
    failures(app, "alice", *[timedelta(seconds=s) for s in range(1, 51)],
             address="203.0.113.66")
    assert login(app, "alice", address="203.0.113.66").status_code == 429
    assert login(app, "alice", address="192.0.2.7").status_code == 302


def test_guessing_from_many_addresses_is_slowed_except_where_the_user_logged_in(app, user):
    with app.app_context():  # alice logged in from her usual address two days ago
        db.session.add(LoginAttempt(username="alice", address="192.0.2.7", success=True,
                                    at=utcnow() - timedelta(days=2)))
        db.session.commit()
    for i in range(10):
        failures(app, "alice", timedelta(seconds=2), address=f"198.51.100.{i + 1}")
    response = login(app, "alice", address="198.51.100.99")
    assert response.status_code == 429
    assert told(response) == "Too many failed logins. Try again in 1 minute."
    assert login(app, "alice", address="192.0.2.7").status_code == 302


def test_nine_addresses_slow_nothing(app, user):
    for i in range(9):
        failures(app, "alice", timedelta(seconds=2), address=f"198.51.100.{i + 1}")
    assert login(app, "alice", address="198.51.100.99").status_code == 302


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


def test_twenty_failures_slow_the_address_for_every_account(app, user):
    for i in range(20):
        assert login(app, f"guess{i}", "whatever password").status_code == 401
    response = login(app, "alice")
    assert response.status_code == 429
    assert told(response) == "Too many failed logins. Try again in 1 minute."
    # The same account from another address is not slowed: alice is not the culprit.
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
