"""A throw-away PostgreSQL server for the tests, from the machine's own PostgreSQL binaries.

``start_postgres()`` runs ``initdb`` in a fresh scratch folder, starts the server with
``pg_ctl`` listening on 127.0.0.1 only, on a free port, with its unix socket in that same
folder (nothing in /var/run, no system cluster touched), and ``stop()`` shuts it down and
removes the folder. Durability is switched off (``fsync``, ``synchronous_commit``): the data
lives for one test module.

PostgreSQL refuses to run as root. When the tests run as root, ``initdb``, ``pg_ctl`` and
the server run as the ``postgres`` user (which Debian's package creates), else ``nobody``,
and the scratch folder belongs to that user. Clients (psql here, the tap under test) connect
over TCP with a password (scram-sha-256), as they would to a real server.

The binaries come from PATH, else from ``/usr/lib/postgresql/<version>/bin`` (Debian puts
only the client wrappers on PATH), newest version first. When they are missing the
fixture fails, naming what to install: ``scripts/test.sh`` installs Debian's ``postgresql``
package when it can (root or sudo).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from .servers import HOST, free_port

SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
START_TIMEOUT_S = 60
SUPERUSER = "tester"
INSTALL_HINT = (
    "install PostgreSQL's server and client (Debian/Ubuntu: `apt-get install -y postgresql`;"
    " `bash scripts/test.sh` does it by itself when run as root or with sudo)"
)


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL binaries are missing, or the server would not start."""


def _version_key(bindir: str) -> tuple[int, ...]:
    match = re.search(r"/postgresql/([\d.]+)/bin$", bindir)
    return tuple(int(part) for part in match.group(1).split(".")) if match else ()


def find_server_bindir() -> Path:
    """The folder holding initdb, pg_ctl and postgres: PATH first, then Debian's folders."""
    on_path = shutil.which("initdb")
    if on_path:
        bindir = Path(on_path).resolve().parent
        if all((bindir / name).exists() for name in SERVER_BINARIES):
            return bindir
    for candidate in sorted(glob.glob(DEBIAN_BIN_GLOB), key=_version_key, reverse=True):
        if all(os.access(Path(candidate) / name, os.X_OK) for name in SERVER_BINARIES):
            return Path(candidate)
    raise PostgresUnavailable(
        f"PostgreSQL server binaries ({', '.join(SERVER_BINARIES)}) not found on PATH nor in"
        f" {DEBIAN_BIN_GLOB}: {INSTALL_HINT}"
    )


def find_psql(bindir: Path) -> Path:
    found = shutil.which("psql") or (str(bindir / "psql") if (bindir / "psql").exists() else None)
    if not found:
        raise PostgresUnavailable(f"psql (PostgreSQL's client) not found on PATH nor in {bindir}: {INSTALL_HINT}")
    return Path(found)


@dataclass(frozen=True)
class RunAs:
    """Who runs the server: ourselves, or (when we are root) an unprivileged user."""

    name: str
    uid: int | None  # None: no switch
    gid: int | None


def server_user() -> RunAs:
    if os.geteuid() != 0:
        return RunAs(pwd.getpwuid(os.geteuid()).pw_name, None, None)
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return RunAs(name, entry.pw_uid, entry.pw_gid)
    raise PostgresUnavailable(
        "the tests run as root, PostgreSQL refuses to, and neither a `postgres` nor a `nobody` user exists"
    )


class LocalPostgres:
    """A running server; ``stop()`` (or leaving the ``with`` block) stops it and removes its folder."""

    def __init__(self, bindir: Path, psql: Path, scratch: Path, port: int, password: str, run_as: RunAs) -> None:
        self.bindir = bindir
        self.psql_path = psql
        self.scratch = scratch
        self.data_dir = scratch / "data"
        self.socket_dir = scratch / "socket"
        self.log_path = scratch / "server.log"
        self.host = HOST
        self.port = port
        self.user = SUPERUSER
        self.password = password
        self.database = "postgres"
        self.run_as = run_as
        self._stopped = False

    def _as_server_user(
        self, argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv),
            cwd=self.scratch,
            env={**os.environ, "LC_ALL": "C", **(env or {})},
            user=self.run_as.uid,
            group=self.run_as.gid,
            extra_groups=[] if self.run_as.uid is not None else None,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def psql(self, sql: str, database: str | None = None, *, single_transaction: bool = True) -> str:
        """Run ``sql`` with psql over TCP, stopping at the first error; return its stdout.

        One transaction unless ``single_transaction=False`` (CREATE DATABASE needs that).
        """
        result = subprocess.run(
            [
                str(self.psql_path),
                "--no-psqlrc",
                "--quiet",
                "--tuples-only",
                "--no-align",
                *(["--single-transaction"] if single_transaction else []),
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                database or self.database,
                "-f",
                "-",
            ],
            input=sql,
            env={**os.environ, "PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "10"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql exited {result.returncode}: {result.stderr.strip()}\nSQL:\n{sql}")
        return result.stdout

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no server log>"

    def _start(self) -> subprocess.CompletedProcess[str]:
        options = " ".join(
            shlex.quote(part)
            for part in (
                "-c",
                f"listen_addresses={self.host}",
                "-p",
                str(self.port),
                "-k",
                str(self.socket_dir),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            )
        )
        pg_ctl = str(self.bindir / "pg_ctl")
        return self._as_server_user(
            [pg_ctl, "start", "-D", str(self.data_dir), "-l", str(self.log_path), "-w", "-t", str(START_TIMEOUT_S),
             "-o", options],
            timeout=START_TIMEOUT_S + 10,
        )  # fmt: skip

    def stop(self) -> None:
        """Stop the server (fast shutdown, then SIGKILL of its postmaster) and remove the folder."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if (self.data_dir / "postmaster.pid").exists():
                done = self._as_server_user(
                    [str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30"],
                    timeout=40,
                )
                pid_file = self.data_dir / "postmaster.pid"
                if done.returncode != 0 and pid_file.exists():
                    # The postmaster this object started (first line of its pid file).
                    with contextlib.suppress(ValueError, OSError, ProcessLookupError):
                        os.kill(int(pid_file.read_text().splitlines()[0]), signal.SIGKILL)
                        time.sleep(0.5)
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalPostgres({self.host}:{self.port}, data={self.data_dir})"


def _scratch_parent(run_as: RunAs) -> str:
    """Where the scratch folder goes: the temp dir (not pytest's tmp_path, which is private to
    the user running the tests), or /tmp when another server user could not reach that."""
    parent = Path(tempfile.gettempdir()).resolve()
    if run_as.uid is None:
        return str(parent)
    reachable = all(os.stat(p).st_mode & 0o001 for p in (parent, *parent.parents))
    return str(parent) if reachable else "/tmp"


def start_postgres(attempts: int = 3) -> LocalPostgres:
    """initdb in a new scratch folder, then start the server on 127.0.0.1 and a free port."""
    bindir = find_server_bindir()
    psql = find_psql(bindir)
    run_as = server_user()
    password = os.urandom(12).hex()
    scratch = Path(tempfile.mkdtemp(prefix="target-kinesis-pg-", dir=_scratch_parent(run_as)))
    try:
        (scratch / "socket").mkdir()
        pwfile = scratch / "pwfile"
        pwfile.write_text(password + "\n")
        if run_as.uid is not None:
            for path in (scratch, scratch / "socket", pwfile):
                os.chown(path, run_as.uid, run_as.gid or -1)
        server = LocalPostgres(bindir, psql, scratch, 0, password, run_as)
        init = server._as_server_user(
            [str(bindir / "initdb"), "-D", str(server.data_dir), "-U", SUPERUSER, f"--pwfile={pwfile}",
             "--auth=scram-sha-256", "--encoding=UTF8", "--no-locale", "--no-sync"],
            timeout=120,
        )  # fmt: skip
        pwfile.unlink()
        if init.returncode != 0:
            raise PostgresUnavailable(
                f"initdb (as {run_as.name}) exited {init.returncode}: {(init.stdout + init.stderr).strip()[-2000:]}"
            )
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    for attempt in range(attempts):
        server.port = free_port()
        started = server._start()
        if started.returncode == 0:
            return server
        log = server.log_tail()
        if "could not bind" in log.lower() and attempt + 1 < attempts:  # the free_port race
            continue
        server.stop()
        raise PostgresUnavailable(
            f"pg_ctl start (as {run_as.name}, port {server.port}) exited {started.returncode}:"
            f" {(started.stdout + started.stderr).strip()}\nserver log:\n{log}"
        )
    raise AssertionError("unreachable")
