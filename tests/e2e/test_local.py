"""`target-kinesis-local`, as a subprocess: it prints its endpoint, everything the config names
exists there (checked with boto3), the target writes to it, and SIGINT / SIGTERM stop it with
exit 0 and its port closed."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.support.readback import list_keys, read_kinesis, unique_name
from tests.support.servers import aws_env, boto_client
from tests.support.target_cli import BIN, record, run_target, schema, singer_lines, state

pytestmark = pytest.mark.e2e

LOCAL = str(BIN / "target-kinesis-local")


def _start(config: dict[str, Any], tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    process = subprocess.Popen(
        [LOCAL, "--config", str(path), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=aws_env("http://127.0.0.1:9", set_endpoint=False),
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    if not first.startswith("endpoint_url "):
        process.kill()
        raise AssertionError(f"no endpoint line: {first!r} {process.stderr.read() if process.stderr else ''}")
    return process, first.split()[1]


def _port_closed(url: str) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", urlparse(url).port or 0)) != 0


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_what_the_config_names_exists_and_a_signal_leaves_nothing(tmp_path, signum):
    kinesis_stream, firehose_stream, bucket = unique_name("k"), unique_name("f"), unique_name("dead")
    config = {
        "destinations": [
            {"event": "*", "stream": kinesis_stream},
            {"event": "Order Completed", "stream": firehose_stream, "service": "firehose"},
        ],
        "dead_letter_path": f"s3://{bucket}/letters/",
        "region": "us-east-1",
    }
    process, url = _start(config, tmp_path, "--shards", "3")
    try:
        assert url.startswith("http://127.0.0.1:")
        kinesis = boto_client("kinesis", url)
        summary = kinesis.describe_stream_summary(StreamName=kinesis_stream)["StreamDescriptionSummary"]
        assert summary["OpenShardCount"] == 3
        firehose = boto_client("firehose", url)
        described = firehose.describe_delivery_stream(DeliveryStreamName=firehose_stream)
        assert described["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE"
        s3 = boto_client("s3", url)
        names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
        assert bucket in names and "target-kinesis-local-firehose" in names

        # The target, with the config and the printed endpoint, writes there.
        users = schema("users", {"id": {"type": "integer"}}, ["id"])
        text = singer_lines(users, *(record("users", {"id": i}) for i in range(5)), state(1))
        run = run_target(
            {**config, "endpoint_url": url, "max_concurrent_requests": 1},
            text,
            endpoint=url,
            tmp_path=tmp_path,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        assert len(read_kinesis(kinesis, kinesis_stream)) == 5
        assert list_keys(s3, bucket) == []
    finally:
        process.send_signal(signum)
        try:
            code = process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
    assert code == 0, process.stderr.read() if process.stderr else ""
    deadline = time.monotonic() + 5
    while not _port_closed(url) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _port_closed(url), "the endpoint is gone"


def test_a_bad_config_is_one_line(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{}")
    done = subprocess.run([LOCAL, "--config", str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith("target-kinesis-local: ") and "stream_name" in line, line
