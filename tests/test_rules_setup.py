"""What create_app's register_extensions sets up for every request: CSRF protection of
every form, the login prompt, the user loader, the SQLite connection's integrity
settings and where `manage.py db` finds the migrations."""
from __future__ import annotations

from pathlib import Path

from loucloud import create_app
from loucloud.extensions import db, migrate
from tests.conftest import PASSWORD, Client

ROOT = Path(__file__).resolve().parent.parent
EXPIRED = "This form has expired or was not sent from LouCloud."


def test_a_login_without_the_forms_token_is_refused(app, user):
    client = app.test_client()
    response = client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 400
    assert EXPIRED in response.get_data(as_text=True)
    assert client.get("/profile").status_code == 302  # not logged in


def test_a_token_from_another_browser_is_refused(app, user, other_user):
    alice, bob = Client(app), Client(app)
    alice.login("alice")
    bob.login("bob")
    response = bob.post("/logout", {"csrf_token": alice.csrf()})
    assert response.status_code == 400
    assert EXPIRED in response.get_data(as_text=True)
    assert bob.get("/profile").status_code == 200  # still logged in


def test_a_page_for_logged_in_users_asks_to_log_in_first(app, anon):
    response = anon.get("/vms/7?tab=disk")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/vms/7?tab%3Ddisk"
    page = anon.get(response.headers["Location"]).get_data(as_text=True)
    start = page.index('<div class="alert alert-info')
    told = page[page.index(">", start) + 1:page.index("<button", start)].strip()
    assert told == "Please log in to see this page."


def test_a_logged_in_browser_is_recognised(as_user):
    assert as_user.get("/profile").status_code == 200


def test_sqlite_enforces_relations_and_lets_readers_in_while_one_writes(app):
    with app.app_context():
        assert db.session.execute(db.text("PRAGMA foreign_keys")).scalar() == 1
        assert db.session.execute(db.text("PRAGMA journal_mode")).scalar() == "wal"


def test_the_migrations_are_the_projects_from_any_working_directory(monkeypatch, tmp_path):
    """`manage.py db ...` started from another directory (a cron job, a deploy script)
    uses the project's migrations and database. Migrate is one module-wide object that
    remembers the last app's settings: it is put back as a fresh process has it."""
    monkeypatch.setattr(migrate, "directory", "migrations")
    monkeypatch.setattr(migrate, "db", None)
    monkeypatch.chdir(tmp_path)
    app = create_app("test", SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'm.sqlite'}")
    config = app.extensions["migrate"]
    assert Path(config.directory) == ROOT / "migrations" and config.db is db
    assert (Path(config.directory) / "env.py").is_file()
    with app.app_context():
        db.engine.dispose()
