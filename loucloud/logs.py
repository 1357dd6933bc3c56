"""Logging, set in one place for every LouCloud process: the web application (mod_wsgi
or ``serve``), the watcher, the sampler, the task worker and the console proxy.

Configuration (instance/loucloud.cfg, or LOUCLOUD_LOG_LEVEL / LOUCLOUD_LOG_FILE):
- ``LOG_LEVEL``: LouCloud's own messages from this level up (DEBUG, INFO, WARNING,
  ERROR); other libraries' from WARNING up.
- ``LOG_FILE``: empty (the default) writes to standard error, which systemd's journal
  keeps for the services (with its own time stamps and rotation) and Apache's error log
  for the web processes; a path appends to that file, reopened when logrotate moves it
  (deploy/loucloud.logrotate), so that every process may write the same file.
Short command-line commands (``manage.py vms list`` ...) print what they did and log
only problems (WARNING up) to standard error.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import sys

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class _Ours(logging.Handler):
    """Marks the handler LouCloud installed (configure replaces it, never another's)."""


def level_of(name: str) -> int:
    name = (name or "INFO").upper()
    if name not in LEVELS:
        raise RuntimeError(f"LOG_LEVEL must be one of {', '.join(LEVELS)}, not {name!r}")
    return getattr(logging, name)


def configure(config, *, service: bool = True) -> None:
    """Install LouCloud's one handler on the root logger (replacing one this function
    installed before) with the configured destination and levels. ``service=False``
    (short CLI commands): problems only, to standard error."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "loucloud", False):
            root.removeHandler(handler)
            handler.close()
    path = config.get("LOG_FILE") or ""
    if service and path:
        handler: logging.Handler = logging.handlers.WatchedFileHandler(path, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    # The journal stamps each line itself (systemd sets JOURNAL_STREAM for a service).
    stamp = "" if not path and os.environ.get("JOURNAL_STREAM") else "%(asctime)s "
    handler.setFormatter(logging.Formatter(
        stamp + "%(levelname)s %(process)d %(name)s: %(message)s" if service
        else "%(levelname)s %(name)s: %(message)s"))
    handler.loucloud = True
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("loucloud").setLevel(
        level_of(config.get("LOG_LEVEL", "INFO")) if service else logging.WARNING)
