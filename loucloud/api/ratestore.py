"""Rate-limit counters in LouCloud's shared file cache: a `limits` storage (the library
Flask-Limiter counts with) for the embedded default and a one-server deployment, whose
mod_wsgi processes share instance/cache but no Redis. One small file per counter,
changed under an exclusive lock (flock), so that every process counts together; a
deployment with Redis (CACHE_TYPE = "RedisCache") counts there instead (limits.py)."""
from __future__ import annotations

import fcntl
import hashlib
import os
import random
import time
from pathlib import Path

from limits.storage import Storage

SCHEME = "loucloud-files"


class FileStorage(Storage):
    """loucloud-files:///absolute/folder — fixed windows only (incr, get, expiry)."""

    STORAGE_SCHEME = [SCHEME]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.folder = Path((uri or "").split("://", 1)[-1] or "/tmp/loucloud-ratelimits")
        self.folder.mkdir(parents=True, exist_ok=True)

    @property
    def base_exceptions(self):
        return OSError

    def _path(self, key: str) -> Path:
        return self.folder / hashlib.sha256(key.encode()).hexdigest()[:40]

    def _open(self, key: str) -> int:
        fd = os.open(self._path(key), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    @staticmethod
    def _read(fd: int, now: float) -> tuple[int, float]:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = os.read(fd, 64).split()
        try:
            count, expiry = int(raw[0]), float(raw[1])
        except (IndexError, ValueError):
            return 0, 0.0
        return (count, expiry) if expiry > now else (0, 0.0)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        fd = self._open(key)
        try:
            count, ends = self._read(fd, now)
            count, ends = count + amount, ends or now + expiry
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, f"{count} {ends:.3f}".encode())
        finally:
            os.close(fd)   # closing releases the lock
        if random.random() < 0.001:
            self._sweep(now)
        return count

    def get(self, key: str) -> int:
        if not self._path(key).exists():
            return 0
        fd = self._open(key)
        try:
            return self._read(fd, time.time())[0]
        finally:
            os.close(fd)

    def get_expiry(self, key: str) -> float:
        if not self._path(key).exists():
            return time.time()
        fd = self._open(key)
        try:
            return self._read(fd, time.time())[1] or time.time()
        finally:
            os.close(fd)

    def check(self) -> bool:
        return os.access(self.folder, os.W_OK)

    def reset(self) -> int | None:
        removed = 0
        for path in self.folder.iterdir():
            path.unlink(missing_ok=True)
            removed += 1
        return removed

    def clear(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def _sweep(self, now: float) -> None:
        """Counters whose window ended long ago go (a file per token and address)."""
        for path in self.folder.iterdir():
            try:
                if path.stat().st_mtime < now - 3600:
                    path.unlink(missing_ok=True)
            except OSError:
                pass
