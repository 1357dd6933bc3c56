"""Logging in one place (loucloud/logs.py): the level and the destination from the
configuration, for the web application and the long-running processes alike."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loucloud import logs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clean_root():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    ours = logging.getLogger("loucloud").level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
    logging.getLogger("loucloud").setLevel(ours)


def test_a_log_file_gets_loucloud_info_and_others_warnings_and_survives_rotation(
        tmp_path, clean_root):
    path = tmp_path / "loucloud.log"
    logs.configure({"LOG_LEVEL": "INFO", "LOG_FILE": str(path)})
    logging.getLogger("loucloud.services.vms").info("VM web-1 created")
    logging.getLogger("urllib3").info("a library's chatter")
    logging.getLogger("urllib3").warning("a library's problem")
    text = path.read_text()
    assert "INFO" in text and "loucloud.services.vms: VM web-1 created" in text
    assert "chatter" not in text and "a library's problem" in text
    os.rename(path, tmp_path / "loucloud.log.1")          # what logrotate does
    logging.getLogger("loucloud").warning("after the rotation")
    assert path.read_text().strip().endswith("after the rotation")
    # Configured again (another create_app in the same process): still one handler.
    logs.configure({"LOG_LEVEL": "WARNING", "LOG_FILE": str(path)})
    logging.getLogger("loucloud").info("not at WARNING")
    logging.getLogger("loucloud").error("once")
    assert path.read_text().count("once") == 1 and "not at WARNING" not in path.read_text()


def test_a_wrong_level_is_refused_by_name(clean_root):
    with pytest.raises(RuntimeError, match="LOG_LEVEL must be one of DEBUG, INFO"):
        logs.configure({"LOG_LEVEL": "chatty"})


def test_the_sampler_process_logs_where_the_configuration_says(tmp_path):
    """manage.py sampler (a service) writes its cycle to LOG_FILE at INFO; a short
    command (hosts list) logs nothing there and prints its table."""
    path = tmp_path / "sampler.log"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LOUCLOUD_")},
           "LOUCLOUD_INSTANCE": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/db",
           "LOUCLOUD_LOG_FILE": str(path), "LOUCLOUD_LOG_LEVEL": "INFO"}
    for args in (["db", "upgrade"], ["sampler", "--once"], ["hosts", "list"]):
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
    text = path.read_text()
    assert "loucloud.services.monitoring.sampler: sampled 0 hosts" in text
    assert text.count("\n") == 1, text    # the sampler's one line; `hosts list` wrote none
