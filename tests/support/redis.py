"""A real redis-server for tests and benchmarks: on a unix socket in a directory of its
own, no TCP port, no persistence; stopped again by stop()."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path


class RedisServer:
    def __init__(self, workdir: Path | None = None, *, shared: bool = False):
        """``shared``: other users (a service user) may use the socket too."""
        # A short directory: a socket's path has at most 107 bytes.
        self.dir = workdir or Path(tempfile.mkdtemp(prefix="lc-redis-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.shared = shared
        if shared:
            self.dir.chmod(0o755)
        self.socket = self.dir / "redis.sock"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 20) -> "RedisServer":
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(
            [binary, "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm",
             "777" if self.shared else "700", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        client = redis.Redis(unix_socket_path=str(self.socket))
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    if self.socket.exists() and client.ping():
                        return self
                except redis.ConnectionError:
                    pass
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("redis-server did not start: " + self.log())
                time.sleep(0.05)
        finally:
            client.close()

    def client(self):
        import redis

        return redis.Redis(unix_socket_path=str(self.socket))

    def log(self) -> str:
        path = self.dir / "redis.log"
        return path.read_text(errors="replace")[-1000:] if path.exists() else ""

    def stop(self, remove: bool = True) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)
