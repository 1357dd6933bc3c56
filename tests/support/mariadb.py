"""A throwaway MariaDB server for tests: its own data directory and socket, started and
stopped by the tests (as root it runs as the mysql user). Real MariaDB, not a stand-in."""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pymysql

BINARIES = ("mariadbd", "mariadb-install-db")


def unavailable_reason() -> str | None:
    missing = [b for b in BINARIES
               if not shutil.which(b) and not Path(f"/usr/sbin/{b}").exists()]
    if missing:
        return f"MariaDB is not installed ({', '.join(missing)} missing; apt-get install mariadb-server)"
    return None


class MariaDB:
    def __init__(self, workdir: Path, port: int = 0):
        self.workdir = Path(workdir)
        self.datadir = self.workdir / "data"
        self.socket = self.workdir / "mysqld.sock"
        self.port = port or _free_port()
        self.proc: subprocess.Popen | None = None
        self.log = self.workdir / "mariadb.log"

    def _user_args(self) -> list[str]:
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("mysql")
                return ["--user=mysql"]
            except KeyError:
                return ["--user=root"]
        return []

    def start(self, timeout: float = 60) -> "MariaDB":
        self.workdir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "mysql", "mysql")
        if not self.datadir.exists():
            install = subprocess.run(["mariadb-install-db", f"--datadir={self.datadir}",
                                      "--auth-root-authentication-method=normal",
                                      "--skip-test-db", *self._user_args()],
                                     check=False, capture_output=True, text=True, timeout=120)
            if install.returncode != 0:
                raise RuntimeError(f"mariadb-install-db failed ({install.returncode}): "
                                   f"{(install.stderr + install.stdout)[-3000:]}")
        self._spawn()
        self._wait(timeout)
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute("CREATE USER IF NOT EXISTS 'loucloud'@'127.0.0.1' "
                        "IDENTIFIED BY 'loucloud-test'")
            cur.execute("GRANT ALL ON *.* TO 'loucloud'@'127.0.0.1'")
        return self

    def _spawn(self) -> None:
        mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        logf = open(self.log, "ab")
        try:
            self.proc = subprocess.Popen(
                [mariadbd, "--no-defaults", f"--datadir={self.datadir}",
                 f"--socket={self.socket}", f"--port={self.port}", "--bind-address=127.0.0.1",
                 f"--pid-file={self.workdir / 'mysqld.pid'}", "--skip-name-resolve",
                 "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=16M",
                 "--max-connections=300", *self._user_args()],
                stdout=logf, stderr=subprocess.STDOUT)
        finally:
            logf.close()

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"MariaDB exited: {self.log.read_text()[-2000:]}")
            # A bare socket first: a failed PyMySQL connect leaks its socket.
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                try:
                    probe.connect(str(self.socket))
                except OSError:
                    time.sleep(0.1)
                    continue
            self.connect().close()
            return
        raise RuntimeError(f"MariaDB did not start in {timeout} s")

    def connect(self, database: str | None = None):
        return pymysql.connect(unix_socket=str(self.socket), user="root", database=database,
                               autocommit=True)

    def create_database(self, name: str) -> str:
        """A fresh, empty database; returns its SQLAlchemy URL (over TCP, as deployed)."""
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 "
                        "COLLATE utf8mb4_unicode_ci")
        return f"mysql+pymysql://loucloud:loucloud-test@127.0.0.1:{self.port}/{name}?charset=utf8mb4"

    def create_user(self, name: str, password: str, database: str) -> None:
        """A user of ``database`` only, reached over TCP, with ``password`` (any text)."""
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@'127.0.0.1'", (name,))
            cur.execute("CREATE USER %s@'127.0.0.1' IDENTIFIED BY %s", (name, password))
            cur.execute(f"GRANT ALL ON `{database}`.* TO %s@'127.0.0.1'", (name,))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self, downtime: float = 0.0, before_start=None) -> None:
        """Stop the server, stay down ``downtime`` seconds (calling ``before_start``
        while it is down), then start it again on the same port and data."""
        self.stop()
        time.sleep(downtime)
        if before_start is not None:
            before_start()
        self._spawn()
        self._wait(60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
