"""Running the real `target-kinesis` CLI as a subprocess, the way users and Meltano do."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .servers import aws_env

BIN = Path(sys.executable).parent
TARGET = str(BIN / "target-kinesis")


@dataclass
class TargetRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def states(self) -> list[Any]:
        """Every STATE the target emitted (one JSON value per stdout line)."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if "ERROR" in line]

    def summary(self, destination: str) -> dict[str, float]:
        """The run-summary counters logged for `service:stream` (counts as int, seconds as float)."""
        for line in self.stderr.splitlines():
            marker = f"summary {destination}: "
            if marker in line:
                fields = line.split(marker, 1)[1].split()
                return {k: float(v) if "." in v else int(v) for k, v in (f.split("=") for f in fields)}
        raise AssertionError(f"no summary line for {destination} in:\n{self.stderr[-3000:]}")


def singer_lines(*messages: dict[str, Any]) -> str:
    return "".join(json.dumps(m) + "\n" for m in messages)


def schema(stream: str, properties: dict[str, Any], key_properties: list[str] | None = None, **extra: Any) -> dict:
    return {
        "type": "SCHEMA",
        "stream": stream,
        "schema": {"type": "object", "properties": properties},
        "key_properties": key_properties or [],
        **extra,
    }


def record(stream: str, rec: dict[str, Any], **extra: Any) -> dict:
    return {"type": "RECORD", "stream": stream, "record": rec, **extra}


def state(value: Any) -> dict:
    return {"type": "STATE", "value": value}


def run_target(
    config: dict[str, Any],
    input_text: str | bytes,
    *,
    endpoint: str,
    tmp_path: Path,
    timeout: float = 120,
    extra_args: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> TargetRun:
    """Run `target-kinesis --config <file>` with `input_text` on stdin (`env`: variables to add)."""
    config_file = tmp_path / f"config-{abs(hash(json.dumps(config, sort_keys=True)))}.json"
    config_file.write_text(json.dumps(config))
    data = input_text.encode() if isinstance(input_text, str) else input_text
    done = subprocess.run(
        [TARGET, "--config", str(config_file), *(extra_args or [])],
        input=data,
        capture_output=True,
        env={**aws_env(endpoint), **(env or {})},
        timeout=timeout,
        check=False,
    )
    return TargetRun(done.returncode, done.stdout.decode(), done.stderr.decode())


def base_config(endpoint: str, **settings: Any) -> dict[str, Any]:
    return {
        "endpoint_url": endpoint,
        "region": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        **settings,
    }
