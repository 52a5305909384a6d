"""Meltano for the tests, in its own venv under ``.cache/`` (git-ignored).

Meltano is not a dependency of target-kinesis: installed into the project venv it would pin
its own versions of shared packages (sqlalchemy, jsonschema, structlog, ...). So it lives in
``.cache/meltano-venv``, built once per machine with the interpreter running the tests, and
the plugins Meltano installs get their own venvs from Meltano's default uv backend, with
uv's cache in ``.cache/uv`` so a second ``meltano install`` downloads nothing.

    .venv/bin/python -m tests.support.meltano    # build if missing, print the executable

A file lock keeps parallel test processes from building the venv at the same time; a
marker file written last means a half-built venv (an interrupted run) is rebuilt.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache"
MELTANO_VERSION = "4.4.1"
MELTANO_VENV = CACHE_DIR / "meltano-venv"
UV_CACHE_DIR = CACHE_DIR / "uv"
INSTALL_TIMEOUT_S = 900

_READY_MARKER = f".ready-meltano-{MELTANO_VERSION}"
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def meltano_executable(venv_dir: Path = MELTANO_VENV) -> Path:
    return venv_dir / "bin" / "meltano"


def ensure_meltano(venv_dir: Path = MELTANO_VENV) -> Path:
    """Return the ``meltano`` executable of ``venv_dir``, creating the venv first if needed."""
    executable = meltano_executable(venv_dir)
    marker = venv_dir / _READY_MARKER
    if marker.exists() and executable.exists():
        return executable
    venv_dir.parent.mkdir(parents=True, exist_ok=True)
    lock_path = venv_dir.parent / f"{venv_dir.name}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if marker.exists() and executable.exists():
                return executable  # another process built it while we waited
            shutil.rmtree(venv_dir, ignore_errors=True)  # half-built or another version
            venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
            pip = [str(venv_dir / "bin" / "python"), "-m", "pip"]
            result = subprocess.run(
                [*pip, "install", "--quiet", "--disable-pip-version-check", f"meltano=={MELTANO_VERSION}"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_S,
                check=False,
                env={k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")},
            )
            if result.returncode != 0 or not executable.exists():
                tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-30:])
                raise RuntimeError(
                    f"installing meltano=={MELTANO_VERSION} into {venv_dir} failed (exit {result.returncode}):\n{tail}"
                )
            marker.write_text(f"meltano=={MELTANO_VERSION}\n")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return executable


def meltano_env(extra: Mapping[str, str] | None = None, *, keep_proxies: bool = True) -> dict[str, str]:
    """Environment for a ``meltano`` subprocess.

    Starts from ours without anything that could leak a developer's setup into the run:
    the project venv (``VIRTUAL_ENV``), AWS settings and credentials, ``MELTANO_*``,
    ``TARGET_KINESIS_*``, ``TAP_JSONL_*``, ``TAP_POSTGRES_*`` and libpq's ``PG*`` variables. AWS lookups that could reach outside
    (shared config files, instance metadata) are switched off, so a run only works with what
    ``extra`` provides. ``keep_proxies=False`` drops proxy variables too (for runs that only
    talk to 127.0.0.1; ``meltano install`` needs them to reach PyPI where a proxy is required).
    """
    dropped_prefixes = ("AWS_", "MELTANO_", "TARGET_KINESIS_", "TAP_JSONL_", "TAP_POSTGRES_", "PG")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
        and not k.startswith(dropped_prefixes)
        and (keep_proxies or k.upper() not in _PROXY_VARS)
    }
    env.update(
        {
            "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "UV_CACHE_DIR": str(UV_CACHE_DIR),
            "UV_LINK_MODE": "copy",  # the cache and a tmp project may be on different file systems
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "PYTHONUNBUFFERED": "1",
            "NO_COLOR": "1",
        }
    )
    if extra:
        env.update(extra)
    return env


if __name__ == "__main__":
    print(ensure_meltano())
    sys.exit(0)
