"""The command line, over the same services as the pages."""
from __future__ import annotations

import json

from loucloud.extensions import db
from loucloud.models import Host, User
from tests.conftest import Client


def _users(app):
    with app.app_context():
        return {u.username: u.is_admin for u in db.session.execute(db.select(User)).scalars()}


def test_init_creates_the_admin_once_and_prints_the_password_once(app, tmp_path, test_host):
    app.config["LOCAL_HOST_URI"] = test_host
    runner = app.test_cli_runner()
    first = runner.invoke(args=["init"])
    assert first.exit_code == 0, first.output
    assert "Password:" in first.output
    password = first.output.split("Password:")[1].split()[0]
    assert len(password) >= 12
    second = runner.invoke(args=["init"])
    assert second.exit_code == 0
    assert "Password:" not in second.output and password not in second.output
    assert _users(app) == {"admin": True}
    with app.app_context():
        assert [s.uri for s in db.session.execute(db.select(Host)).scalars()] == [test_host]


def test_init_uses_the_password_from_the_environment(app, monkeypatch, tmp_path):
    app.config["LOCAL_HOST_URI"] = f"qemu+unix:///system?socket={tmp_path / 'no.sock'}"
    monkeypatch.setenv("LOUCLOUD_ADMIN_PASSWORD", "admin password 123")
    result = app.test_cli_runner().invoke(args=["init"])
    assert "Password:" not in result.output
    assert "Administrator created: admin, with the password in LOUCLOUD_ADMIN_PASSWORD" \
        in result.output
    assert Client(app).login("admin", "admin password 123").status_code == 302


def test_init_falls_back_to_a_labelled_demo_host(app, tmp_path):
    app.config["LOCAL_HOST_URI"] = f"qemu+unix:///system?socket={tmp_path / 'no.sock'}"
    result = app.test_cli_runner().invoke(args=["init"])
    assert result.exit_code == 0, result.output
    assert "SIMULATED" in result.output
    with app.app_context():
        [host] = db.session.execute(db.select(Host)).scalars().all()
        assert host.uri == "test:///default" and host.is_demo
    # Running it again keeps the demo host and adds nothing.
    app.test_cli_runner().invoke(args=["init"])
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(Host.id))).scalar() == 1


def test_hosts_add_and_list_json(app, test_host, test_host2):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["hosts", "add", "h1", test_host]).exit_code == 0
    assert runner.invoke(args=["hosts", "add", "h2", test_host2]).exit_code == 0
    result = runner.invoke(args=["hosts", "list", "--json"])
    rows = json.loads(result.output)
    assert [(r["name"], r["online"], r["cpus"]) for r in rows] == [("h1", True, 4),
                                                                   ("h2", True, 8)]


def test_hosts_add_failure_is_one_line_and_nonzero(app, tmp_path):
    result = app.test_cli_runner().invoke(
        args=["hosts", "add", "x", f"qemu+unix:///system?socket={tmp_path / 'no.sock'}"])
    assert result.exit_code == 1
    assert result.output.startswith("error: Could not connect")
    assert result.output.count("\n") == 1


def test_hosts_add_of_a_file_that_is_no_node_description(app, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-LINE-42 not for anybody\n")
    result = app.test_cli_runner().invoke(args=["hosts", "add", "x", f"test://{secret}"])
    assert result.exit_code == 1
    assert result.output.startswith("error: Could not connect")
    assert result.output.count("\n") == 1 and "SECRET" not in result.output


def test_users_create_and_list(app, monkeypatch):
    monkeypatch.setenv("LOUCLOUD_USER_PASSWORD", "password of dave")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "dave", "--full-name", "Dave D"])
    assert result.exit_code == 0, result.output
    bad = runner.invoke(args=["users", "create", "dave"])
    assert bad.exit_code == 1 and "taken" in bad.output
    rows = json.loads(runner.invoke(args=["users", "list", "--json"]).output)
    assert [(r["username"], r["role"], r["max_vms"]) for r in rows] == [("dave", "user", 5)]
