"""The README's demo: everything on 127.0.0.1, nothing in a real AWS account.

1. starts moto's server (Kinesis, Firehose, S3) on 127.0.0.1:4567 (DEMO_PORT to change);
2. creates the Kinesis stream `demo-events` and the Firehose delivery stream
   `demo-orders` (delivering to the S3 bucket `demo-firehose`);
3. pipes sample_data/demo.singer through `target-kinesis --config sample_config.json`
   and prints the target's end-of-run lines (summary and capacity);
4. reads back what landed with `target-kinesis-tail` and prints it;
5. stops the endpoint and removes its scratch folder (`$TMPDIR/target-kinesis-demo-*`),
   also after a failure, Ctrl-C or SIGTERM (scripts/local_aws.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
from local_aws import banner, moto_server, run_main

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PORT = int(os.environ.get("DEMO_PORT", "4567"))
#: The target's log lines the demo shows: the run summary (README, "Run summary and progress").
SHOWN_LOG_LINES = ("summary ", "capacity ", "ERROR")


def create_destinations(url: str) -> None:
    session = boto3.Session(region_name="us-east-1", aws_access_key_id="demo", aws_secret_access_key="demo")
    kinesis = session.client("kinesis", endpoint_url=url)
    kinesis.create_stream(StreamName="demo-events", ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName="demo-events", WaiterConfig={"Delay": 0.2})
    s3 = session.client("s3", endpoint_url=url)
    s3.create_bucket(Bucket="demo-firehose")
    session.client("firehose", endpoint_url=url).create_delivery_stream(
        DeliveryStreamName="demo-orders",
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose-demo",
            "BucketARN": "arn:aws:s3:::demo-firehose",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
        },
    )
    print("created kinesis stream demo-events (2 shards), firehose delivery stream demo-orders -> s3://demo-firehose")


def config_path(workdir: Path, url: str) -> Path:
    config = json.loads((ROOT / "sample_config.json").read_text())
    config["endpoint_url"] = url
    path = workdir / "config.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def run_demo(workdir: Path) -> int:
    banner(f"starting a local Kinesis/Firehose endpoint (moto) on http://127.0.0.1:{PORT}")
    env = {  # read after prepare_process(), which keeps loopback calls away from any proxy
        **os.environ,
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with moto_server(PORT, workdir / "endpoint.log") as url:
        create_destinations(url)
        config = config_path(workdir, url)
        banner("tap | target-kinesis --config sample_config.json")
        with (ROOT / "sample_data" / "demo.singer").open("rb") as singer_input:
            run = subprocess.run(
                [str(BIN / "target-kinesis"), "--config", str(config)],
                stdin=singer_input,
                capture_output=True,
                env=env,
                check=False,
            )
        for line in run.stderr.decode().splitlines():
            if any(marker in line for marker in SHOWN_LOG_LINES):
                print("  log:", line.split("| ")[-1])
        print("  STATE emitted on stdout:", run.stdout.decode().strip() or "(none)")
        if run.returncode != 0:
            print(run.stderr.decode()[-3000:], file=sys.stderr)
            return run.returncode

        banner("target-kinesis-tail --stream demo-events   (Kinesis, every shard)")
        tail = [str(BIN / "target-kinesis-tail"), "--config", str(config)]
        subprocess.run([*tail, "--stream", "demo-events"], env=env, check=True)
        banner("target-kinesis-tail --service firehose --stream demo-orders --bucket demo-firehose   (Firehose -> S3)")
        subprocess.run(
            [*tail, "--service", "firehose", "--stream", "demo-orders", "--bucket", "demo-firehose"],
            env=env,
            check=True,
        )
    return 0


def main() -> int:
    return run_main(
        "demo",
        "target-kinesis-demo-",
        run_demo,
        cleaned="the endpoint is stopped and its scratch folder removed",
        port_hint="set DEMO_PORT to a free port",
    )


if __name__ == "__main__":
    sys.exit(main())
