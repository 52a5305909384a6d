"""The Meltano try-out (scripts/meltano_demo.py, which `bash scripts/meltano_demo.sh` runs after
bootstrapping): `meltano run tap-jsonl target-kinesis` against a local moto endpoint prints the
sample's events read back from the stream, and leaves nothing behind.

Like tests/meltano/test_meltano.py it uses Meltano from `.cache/meltano-venv` and uv's cache in
`.cache/uv`; a warm run takes about a minute (mostly `meltano install` in the scratch project).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.meltano import ensure_meltano
from tests.support.servers import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "meltano_demo.py"
SAMPLE = REPO_ROOT / "sample_data" / "jsonl" / "page_views.jsonl"
TIMEOUT_S = 900


@pytest.mark.e2e
@pytest.mark.slow
def test_meltano_demo_prints_the_events_read_back_and_leaves_nothing(tmp_path: Path) -> None:
    ensure_meltano()  # built here first, so a cold machine's build is not inside the script's run
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TARGET_KINESIS_", "MELTANO_"))}
    env.update({"TMPDIR": str(tmpdir), "MELTANO_DEMO_PORT": str(free_port()), "PYTHONUNBUFFERED": "1"})
    done = subprocess.run(
        [sys.executable, str(SCRIPT)],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    out = done.stdout

    rows = [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"messageId"' in line]
    assert sorted(e["messageId"] for e in events) == sorted(row["message_id"] for row in rows)
    assert all(e["type"] == "track" and e["context"]["library"]["name"] == "target-kinesis" for e in events)
    assert f"-- {len(rows)} events read back from kinesis stream demo-events" in out
    assert re.search(rf"log: summary kinesis:demo-events: records_sent={len(rows)} .* failed=0\b", out), out
    state = json.loads(next(line for line in out.splitlines() if line.startswith('{"singer_state"')))
    assert "page_views" in state["singer_state"]["bookmarks"]
    assert "done: the endpoint is stopped and the scratch project removed" in out

    assert sorted(p.name for p in tmpdir.iterdir()) == [], "the Meltano demo left files in its TMPDIR"
    port = int(env["MELTANO_DEMO_PORT"])
    assert f"http://127.0.0.1:{port}" in out
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the endpoint still runs after the demo ended"
