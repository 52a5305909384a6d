"""The contenders against the null endpoint: what runs, with which config, and what the endpoint must count.

target-kinesis (Kinesis, Firehose, aggregation kpl, one process), the hand-written producer,
the null SDK target and, with ``--ref``, the target's twins at REV (bench.refs).
"""

from __future__ import annotations

import json
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from bench.base import BENCH, BIN, OUT, PY, ROOT
from bench.endpoints import Endpoint
from bench.refs import BOOT, REF_BASES, RefTree, ref_key


@dataclass
class Contender:
    key: str
    label: str
    argv: list[str] | None  # None: missing
    counted_api: str | None  # "kinesis" / "firehose": the endpoint must receive every record
    missing: str = ""
    #: settings added to the target's config (``{"aggregation": "kpl"}``)
    config: dict = field(default_factory=dict)
    #: the null endpoint's counter that must equal the input's records (default ``API_records``;
    #: ``kinesis_events`` when records are packed: it counts the events inside KPL aggregates)
    received_key: str | None = None


def write_config(path: Path, url: str, service: str, stream: str = "bench", extra: dict | None = None) -> Path:
    """The target's config: ``stream`` at the endpoint ``url``, dummy credentials, preflight on,
    plus ``extra`` settings."""
    cfg = {
        "stream_name": stream,
        "service": service,
        "endpoint_url": url,
        "region": "us-east-1",
        "aws_access_key_id": "x",
        "aws_secret_access_key": "y",
        "preflight_check": True,
        **(extra or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cfg, indent=2) + "\n")
    return path


def _config(endpoint: Endpoint, service: str, aggregation: str = "") -> Path:
    name = f"config-{service}-{aggregation}.json" if aggregation else f"config-{service}.json"
    return write_config(OUT / name, endpoint.url, service, extra={"aggregation": aggregation} if aggregation else None)


def target_command(override: str | None) -> tuple[list[str] | None, str]:
    if override:
        argv = shlex.split(override)
        exe = shutil.which(argv[0]) or (argv[0] if Path(argv[0]).exists() else None)
        if exe is None:
            return None, f"--target-cmd {argv[0]!r} not found"
        return argv, ""
    for candidate in (BIN / "target-kinesis", ROOT / ".venv" / "bin" / "target-kinesis"):
        if candidate.exists():
            return [str(candidate)], ""
    return None, (
        f"target-kinesis CLI not found at {BIN / 'target-kinesis'} (install the package: .venv/bin/pip install -e .)"
    )


def build_contenders(endpoint: Endpoint, target_cmd: str | None, ref: RefTree | None = None) -> dict[str, Contender]:
    cfg_k = str(_config(endpoint, "kinesis"))
    cfg_f = str(_config(endpoint, "firehose"))
    cfg_kpl = str(_config(endpoint, "kinesis", "kpl"))
    serial = {"mapping_processes": 0}
    cfg_serial = str(write_config(OUT / "config-kinesis-serial.json", endpoint.url, "kinesis", extra=serial))
    tk, missing = target_command(target_cmd)
    baseline = [PY, str(BENCH / "baseline_producer.py")]
    contenders = {
        "tk-kinesis": Contender(
            "tk-kinesis",
            "target-kinesis -> Kinesis",
            [*tk, "--config", cfg_k] if tk else None,
            "kinesis",
            missing,
        ),
        "tk-firehose": Contender(
            "tk-firehose",
            "target-kinesis -> Firehose",
            [*tk, "--config", cfg_f] if tk else None,
            "firehose",
            missing,
        ),
        "tk-kinesis-kpl": Contender(
            "tk-kinesis-kpl",
            "target-kinesis -> Kinesis, aggregation kpl",
            [*tk, "--config", cfg_kpl] if tk else None,
            "kinesis",
            missing,
            config={"aggregation": "kpl"},
            received_key="kinesis_events",
        ),
        "tk-kinesis-serial": Contender(
            "tk-kinesis-serial",
            "target-kinesis -> Kinesis, no mapping processes",
            [*tk, "--config", cfg_serial] if tk else None,
            "kinesis",
            missing,
            config=serial,
        ),
        "baseline": Contender("baseline", "baseline producer -> Kinesis", [*baseline, "--config", cfg_k], "kinesis"),
        "baseline-firehose": Contender(
            "baseline-firehose",
            "baseline producer -> Firehose",
            [*baseline, "--config", cfg_f],
            "firehose",
        ),
        "null-target": Contender(
            "null-target",
            "null SDK target (validation on)",
            [PY, str(BENCH / "null_target.py"), "--config", cfg_k],
            None,
        ),
    }
    if ref is not None:
        boot = [PY, "-c", BOOT, str(ref.path)]
        for key, cfg in zip(REF_BASES, (cfg_k, cfg_f, cfg_serial, cfg_kpl), strict=True):
            current = contenders[key]
            contenders[ref_key(key, ref)] = Contender(
                ref_key(key, ref),
                f"{current.label} @{ref.short}",
                [*boot, "--config", cfg],
                current.counted_api,
                config=current.config,
                received_key=current.received_key,
            )
    return contenders
