"""deploy/install.py: this site's Apache site file and systemd units from
/etc/loucloud/site.conf, and no site's values in the tracked files (the deployment
test runs it for real, with Apache)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTALL = ROOT / "deploy/install.py"
TRACKED = ["apache-wsgi.conf", "apache-wsgi-http.conf", "loucloud-site.conf",
           "loucloud-console.service", "loucloud-watcher.service",
           "loucloud-sampler.service", "loucloud-worker.service"]


def _site(tmp_path: Path, **values) -> Path:
    settings = {"LOUCLOUD_HOME": str(ROOT), "LOUCLOUD_USER": "lcsite",
                "LOUCLOUD_SERVER_NAME": "cloud.lab", "LOUCLOUD_CERTIFICATE": "/c/cert.pem",
                "LOUCLOUD_CERTIFICATE_KEY": "/c/key.pem", "LOUCLOUD_CONSOLE_PORT": "6181",
                **values}
    path = tmp_path / "site.conf"
    path.write_text("# a comment\n\n" + "".join(f"{k}={v}\n" for k, v in settings.items()
                                               if v is not None))
    return path


def _install(tmp_path: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(INSTALL), "--site", str(site),
                           "--apache-site", str(tmp_path / "apache/loucloud.conf"),
                           "--systemd-dir", str(tmp_path / "systemd")],
                          capture_output=True, text=True, timeout=60)


def test_tracked_files_hold_no_site_values():
    for name in TRACKED:
        text = (ROOT / "deploy" / name).read_text()
        lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
        for value in ("/srv/loucloud", "6080", "example.org", "User=loucloud",
                      "user=loucloud"):
            assert not [line for line in lines if value in line], (name, value)


def test_the_site_file_and_units_carry_the_sites_values(tmp_path):
    result = _install(tmp_path, _site(tmp_path))
    assert result.returncode == 0, result.stderr
    apache = (tmp_path / "apache/loucloud.conf").read_text()
    assert "Define LOUCLOUD_HOME " + str(ROOT) in apache
    assert "Define LOUCLOUD_SERVER_NAME cloud.lab" in apache
    assert f"Include {ROOT}/deploy/apache-wsgi.conf" in apache
    units = sorted(p.name for p in (tmp_path / "systemd").iterdir())
    assert units == sorted(TRACKED[3:])
    worker = (tmp_path / "systemd/loucloud-worker.service").read_text()
    assert "User=lcsite" in worker and f"WorkingDirectory={ROOT}" in worker
    assert f"ExecStart={ROOT}/.venv/bin/python manage.py worker" in worker
    console = (tmp_path / "systemd/loucloud-console.service").read_text()
    assert "--port 6181" in console
    for text in [worker, console]:
        assert not re.search(r"\$\{LOUCLOUD_", text)
    again = _install(tmp_path, _site(tmp_path))
    assert again.stdout.count("unchanged") == 5, again.stdout


def test_the_console_proxy_is_on_loopback_unless_the_site_says(tmp_path):
    assert _install(tmp_path, _site(tmp_path)).returncode == 0
    apache = (tmp_path / "apache/loucloud.conf").read_text()
    assert "Define LOUCLOUD_CONSOLE_HOST 127.0.0.1" in apache
    # The containers' web container finds the proxy in the console's container.
    assert _install(tmp_path, _site(tmp_path, LOUCLOUD_CONSOLE_HOST="console")).returncode == 0
    apache = (tmp_path / "apache/loucloud.conf").read_text()
    assert "Define LOUCLOUD_CONSOLE_HOST console" in apache
    site = (ROOT / "deploy/loucloud-site.conf").read_text()
    assert "http://${LOUCLOUD_CONSOLE_HOST}:${LOUCLOUD_CONSOLE_PORT}/websockify" in site


def test_plain_http_needs_no_certificate(tmp_path):
    site = _site(tmp_path, LOUCLOUD_TLS="no", LOUCLOUD_CERTIFICATE=None,
                 LOUCLOUD_CERTIFICATE_KEY=None)
    result = _install(tmp_path, site)
    assert result.returncode == 0, result.stderr
    assert "deploy/apache-wsgi-http.conf" in (tmp_path / "apache/loucloud.conf").read_text()


@pytest.mark.parametrize("values, message", [
    ({"LOUCLOUD_SERVER_NAME": None}, "set LOUCLOUD_SERVER_NAME"),
    ({"LOUCLOUD_CERTIFICATE_KEY": None}, "set LOUCLOUD_CERTIFICATE_KEY"),
    ({"LOUCLOUD_HOME": "srv/loucloud"}, "LOUCLOUD_HOME must be an absolute path"),
    ({"LOUCLOUD_HOME": "/nonexistent"}, "is not a LouCloud checkout"),
    ({"LOUCLOUD_USER": "Root Admin"}, "no spaces"),
    ({"LOUCLOUD_USER": "9lives"}, "LOUCLOUD_USER is not a user name"),
    ({"LOUCLOUD_CONSOLE_PORT": "70000"}, "LOUCLOUD_CONSOLE_PORT is not a port"),
    ({"LOUCLOUD_CONSOLE_HOST": "-x"}, "LOUCLOUD_CONSOLE_HOST is not a host name"),
    ({"LOUCLOUD_HOME": "/srv/$(reboot)"}, "no spaces, quotes, $"),
])
def test_bad_site_values_are_refused_and_nothing_is_written(tmp_path, values, message):
    result = _install(tmp_path, _site(tmp_path, **values))
    assert result.returncode == 1
    assert message in result.stderr
    assert not (tmp_path / "systemd").exists() and not (tmp_path / "apache").exists()


def test_a_missing_site_file_says_what_to_do(tmp_path):
    result = _install(tmp_path, tmp_path / "nowhere.conf")
    assert result.returncode == 1
    assert "Copy deploy/site.conf.example there" in result.stderr


def test_readme_blocks_for_the_deployment_test_are_there():
    from tests.support.deployment import readme_blocks
    blocks = readme_blocks()
    assert set(blocks) == {"user", "instance", "schema", "install", "upgrade"}
    assert all(block.startswith(". /etc/loucloud/site.conf") for block in blocks.values())
    # A minimal Debian has no sudo: no command of the document needs it.
    assert not re.search(r"^\s*sudo ", (ROOT / "deploy/README.md").read_text(), re.M)
