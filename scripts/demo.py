"""The README's demo: everything on 127.0.0.1, nothing in a real AWS account.

1. starts moto's server (Kinesis, Firehose, S3) on 127.0.0.1:4567 (DEMO_PORT to change);
2. creates the Kinesis stream `demo-events` and the Firehose delivery stream
   `demo-orders` (delivering to the S3 bucket `demo-firehose`);
3. pipes sample_data/demo.singer through `target-kinesis --config sample_config.json`;
4. reads back what landed with `target-kinesis-tail` and prints it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PORT = int(os.environ.get("DEMO_PORT", "4567"))
URL = f"http://127.0.0.1:{PORT}"
ENV = {
    **os.environ,
    "AWS_ACCESS_KEY_ID": "demo",
    "AWS_SECRET_ACCESS_KEY": "demo",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def banner(text: str) -> None:
    print(f"\n== {text}", flush=True)


def start_endpoint(log_path: Path) -> subprocess.Popen[bytes]:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", PORT)) == 0:
            sys.exit(f"demo: port {PORT} on 127.0.0.1 is in use; set DEMO_PORT to a free port")
    log = log_path.open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(PORT)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{URL}/moto-api/", timeout=1).close()
            return server
        except OSError:
            if server.poll() is not None:
                break
            time.sleep(0.2)
    server.kill()
    sys.exit(f"demo: the local endpoint did not start; see {log_path}")


def create_destinations() -> None:
    session = boto3.Session(region_name="us-east-1", aws_access_key_id="demo", aws_secret_access_key="demo")
    kinesis = session.client("kinesis", endpoint_url=URL)
    kinesis.create_stream(StreamName="demo-events", ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName="demo-events", WaiterConfig={"Delay": 0.2})
    s3 = session.client("s3", endpoint_url=URL)
    s3.create_bucket(Bucket="demo-firehose")
    session.client("firehose", endpoint_url=URL).create_delivery_stream(
        DeliveryStreamName="demo-orders",
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose-demo",
            "BucketARN": "arn:aws:s3:::demo-firehose",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
        },
    )
    print("created kinesis stream demo-events (2 shards), firehose delivery stream demo-orders -> s3://demo-firehose")


def config_path(workdir: Path) -> Path:
    config = json.loads((ROOT / "sample_config.json").read_text())
    config["endpoint_url"] = URL
    path = workdir / "config.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="target-kinesis-demo-"))
    banner(f"starting a local Kinesis/Firehose endpoint (moto) on {URL}")
    server = start_endpoint(workdir / "endpoint.log")
    try:
        create_destinations()
        config = config_path(workdir)
        banner("tap | target-kinesis --config sample_config.json")
        with (ROOT / "sample_data" / "demo.singer").open("rb") as singer_input:
            run = subprocess.run(
                [str(BIN / "target-kinesis"), "--config", str(config)],
                stdin=singer_input,
                capture_output=True,
                env=ENV,
                check=False,
            )
        for line in run.stderr.decode().splitlines():
            if "summary" in line or "ERROR" in line:
                print("  log:", line.split("| ")[-1])
        print("  STATE emitted on stdout:", run.stdout.decode().strip() or "(none)")
        if run.returncode != 0:
            print(run.stderr.decode()[-3000:], file=sys.stderr)
            return run.returncode

        banner("target-kinesis-tail --stream demo-events   (Kinesis, every shard)")
        subprocess.run(
            [str(BIN / "target-kinesis-tail"), "--config", str(config), "--stream", "demo-events"],
            env=ENV,
            check=True,
        )
        banner("target-kinesis-tail --service firehose --stream demo-orders --bucket demo-firehose   (Firehose -> S3)")
        subprocess.run(
            [
                str(BIN / "target-kinesis-tail"),
                "--config",
                str(config),
                "--service",
                "firehose",
                "--stream",
                "demo-orders",
                "--bucket",
                "demo-firehose",
            ],
            env=ENV,
            check=True,
        )
        banner("done: the endpoint is stopped; nothing left running")
        return 0
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
