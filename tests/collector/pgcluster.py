"""A throwaway PostgreSQL cluster for the tests: ``initdb`` + ``pg_ctl`` in a temp folder.

Debian's server binaries (``/usr/lib/postgresql/*/bin``, installed by ``./build.sh
setup``) run as the unprivileged ``postgres`` user when the tests run as root (the
server refuses root). The cluster listens on 127.0.0.1 on a free port, with
durability off (``fsync=off``): the tests kill collectors, never the server's host.
Each test gets its own schema (``fresh_url``), so one cluster serves the session.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import psycopg

__all__ = ["PgCluster", "find_bin_dir"]

DATABASE = "empmix_test"


def find_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/N/bin`` holding ``initdb`` and ``pg_ctl`` (or ``$PG_BIN``)."""
    override = os.environ.get("PG_BIN")
    if override:
        return Path(override)
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parent.parent.name or 0)
    )
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgCluster:
    """One cluster: :meth:`start`, :meth:`stop` (for outage tests), :meth:`remove`."""

    def __init__(self, bin_dir: Path, *, durable: bool = False) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="empmix-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync",
                  "--encoding=UTF8", "--locale=C.UTF-8")
        conf = self.data / "postgresql.conf"
        # tests: no durability (they kill collectors, not the server); benchmarks: the defaults
        durability = "" if durable else "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
        with conf.open("a") as out:
            out.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.root}'\n"
                f"{durability}max_connections = 200\nshared_buffers = 128MB\n"
            )
        self.start()
        with psycopg.connect(self.admin_url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir / tool), *args]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=check)

    def admin_url(self, database: str = DATABASE) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start the server and wait until it takes connections."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-t", "60", "start")
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.admin_url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server at once (``-m fast``: clients are disconnected)."""
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-m", "fast", "stop", check=False)

    def server_pids(self) -> list[int]:
        """The postmaster and its children (backends, WAL writer, ...), for CPU accounting."""
        try:
            postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        pids = [postmaster]
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                pids.append(int(Path(stat).parent.name))
        return pids

    def remove(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def fresh_url(self) -> str:
        """A URL whose connections work in a new, empty schema of the test database."""
        schema = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        return self.admin_url() + "?options=" + quote(f"-c search_path={schema}", safe="")
