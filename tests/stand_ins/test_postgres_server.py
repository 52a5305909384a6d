"""The throw-away PostgreSQL of tests/support/postgres.py: where it listens, who runs it, that it
leaves nothing behind, and that a machine without PostgreSQL gets told what to install."""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

import pytest

from tests.support import postgres
from tests.support.postgres import LocalPostgres, PostgresUnavailable, start_postgres


def test_missing_binaries_say_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    monkeypatch.setattr(postgres, "DEBIAN_BIN_GLOB", str(tmp_path / "postgresql" / "*" / "bin"))
    with pytest.raises(PostgresUnavailable) as caught:
        start_postgres()
    message = str(caught.value)
    assert "initdb, pg_ctl, postgres" in message
    assert "apt-get install -y postgresql" in message
    assert "scripts/test.sh" in message


def test_debian_folders_are_found_newest_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for version in ("9.6", "15", "13"):
        bindir = tmp_path / "postgresql" / version / "bin"
        bindir.mkdir(parents=True)
        for name in postgres.SERVER_BINARIES:
            (bindir / name).write_text("#!/bin/sh\n")
            (bindir / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(postgres, "DEBIAN_BIN_GLOB", str(tmp_path / "postgresql" / "*" / "bin"))
    assert postgres.find_server_bindir() == tmp_path / "postgresql" / "15" / "bin"


def _server_pid(server: LocalPostgres) -> int:
    return int(server.data_dir.joinpath("postmaster.pid").read_text().splitlines()[0])


def _running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie, which an init that reaps slowly leaves, is not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def test_server_on_loopback_as_a_non_root_user_and_removed_after() -> None:
    server = start_postgres()
    try:
        scratch = server.scratch
        assert server.host == "127.0.0.1"
        assert server.psql("SELECT 1 + 1;").strip() == "2"
        settings = server.psql(
            "SELECT current_setting('listen_addresses'), current_setting('unix_socket_directories'),"
            " current_setting('port');"
        ).strip()
        assert settings == f"127.0.0.1|{server.socket_dir}|{server.port}"
        assert (server.socket_dir / f".s.PGSQL.{server.port}").exists()
        pid = _server_pid(server)
        assert _running(pid)
        owner = os.stat(f"/proc/{pid}").st_uid
        assert owner != 0, "the server runs as root"
        if os.geteuid() == 0:
            assert pwd.getpwuid(owner).pw_name in ("postgres", "nobody")
        # Password authentication over TCP: a wrong password is refused.
        wrong = subprocess.run(
            [str(server.psql_path), "-h", server.host, "-p", str(server.port), "-U", server.user, "-c", "SELECT 1"],
            env={**os.environ, "PGPASSWORD": "wrong", "PGCONNECT_TIMEOUT": "5"},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert wrong.returncode != 0
        assert "password authentication failed" in wrong.stderr
    finally:
        server.stop()
    assert not scratch.exists()
    assert not _running(pid)
