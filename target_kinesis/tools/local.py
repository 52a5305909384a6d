"""`target-kinesis-local`: a local endpoint with everything one's own config names, to try it before AWS.

    target-kinesis-local --config config.json [--shards N] [--port P]

Starts moto's server on 127.0.0.1 (`local_endpoint.py`, the one the demos use; moto comes with
the ``local`` extra: ``pip install 'target-kinesis[local]'``), creates every Kinesis stream
(``--shards`` each, default 1) and Firehose delivery stream the config names (``stream_name``
and every ``destinations`` rule), a bucket each Firehose delivery stream delivers to
(``FIREHOSE_BUCKET``, under the prefix ``<stream>/``), and the bucket of an ``s3://``
``dead_letter_path``; then prints the ``endpoint_url`` to use and what to run next, and waits.
Ctrl-C or SIGTERM stops the server (its data was only in memory) and removes its log folder:
nothing is left behind; exit 0.

stdout: the line ``endpoint_url http://127.0.0.1:PORT`` first, then what was created and the
commands to run. Errors: one line on stderr, exit 1 (2 for bad arguments).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from target_kinesis.config.settings import Settings
from target_kinesis.tools.cli import ToolError, ToolParser, read_config, settings_of
from target_kinesis.tools.local_endpoint import EndpointError, free_port, ignore_signals, moto_installed, moto_server

PROG = "target-kinesis-local"
#: Where every local Firehose delivery stream delivers, each under a prefix of its own name.
FIREHOSE_BUCKET = "target-kinesis-local-firehose"
#: moto checks no credentials; these sign the set-up calls (never the user's own).
_LOCAL_KEYS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


class Stopped(Exception):
    """SIGINT or SIGTERM: stop the endpoint."""


def _stop(signum: int, _frame: FrameType | None) -> None:
    raise Stopped(signum)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = ToolParser(prog=PROG, description="A local Kinesis/Firehose/S3 endpoint with what a config names.")
    parser.add_argument("--config", required=True, help="the target's config.json")
    parser.add_argument("--shards", type=int, default=1, help="shards of each Kinesis stream (default 1)")
    parser.add_argument("--port", type=int, help="port on 127.0.0.1 (default: a free one)")
    args = parser.parse_args(argv)
    if args.shards < 1:
        parser.error("--shards must be 1 or more")
    return args


def create_everything(url: str, settings: Settings, shards: int) -> list[str]:
    """Every stream, delivery stream and bucket the config names; one line each, for the operator."""
    session = boto3.Session(region_name=settings.region, **_LOCAL_KEYS)
    config = Config(retries={"mode": "standard", "total_max_attempts": 3}, proxies={})
    kinesis, firehose, s3 = (
        session.client(name, endpoint_url=url, config=config) for name in ("kinesis", "firehose", "s3")
    )
    created: list[str] = []
    buckets: list[str] = []
    destinations = settings.destinations
    if any(d.service == "firehose" for d in destinations):
        buckets.append(FIREHOSE_BUCKET)
    location = settings.dead_letter_location
    if location is not None and location.bucket not in buckets:
        buckets.append(location.bucket)
    for bucket in buckets:
        if settings.region == "us-east-1":
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": settings.region})
        what = "dead letters" if location is not None and bucket == location.bucket else "Firehose deliveries"
        created.append(f"s3 bucket '{bucket}' ({what})")
    for destination in destinations:
        if destination.service == "kinesis":
            kinesis.create_stream(StreamName=destination.stream, ShardCount=shards)
            kinesis.get_waiter("stream_exists").wait(StreamName=destination.stream, WaiterConfig={"Delay": 0.2})
            created.append(f"kinesis stream '{destination.stream}' ({shards} shard(s))")
        else:
            firehose.create_delivery_stream(
                DeliveryStreamName=destination.stream,
                DeliveryStreamType="DirectPut",
                ExtendedS3DestinationConfiguration={
                    "RoleARN": "arn:aws:iam::123456789012:role/target-kinesis-local",
                    "BucketARN": f"arn:aws:s3:::{FIREHOSE_BUCKET}",
                    "Prefix": f"{destination.stream}/",
                    "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60},
                    "CompressionFormat": "UNCOMPRESSED",
                },
            )
            created.append(
                f"firehose delivery stream '{destination.stream}' (to s3://{FIREHOSE_BUCKET}/{destination.stream}/)"
            )
    return created


def next_steps(url: str, config_path: str, settings: Settings) -> list[str]:
    lines = [
        f'Set "endpoint_url": "{url}" in your config (or pass --endpoint-url to the tail), then:',
        f"  target-kinesis --config {config_path} < your-singer-output.jsonl",
    ]
    for destination in settings.destinations:
        lines.append(
            f"  target-kinesis-tail --config {config_path} --endpoint-url {url} "
            f"--stream {destination.stream} --service {destination.service}"
        )
    lines.append("Any credentials work against it (moto checks none). Ctrl-C stops it and removes everything.")
    return lines


def run(args: argparse.Namespace) -> None:
    settings = settings_of(read_config(args.config))
    if not moto_installed():
        raise ToolError("needs moto's server, which is not installed: pip install 'target-kinesis[local]'")
    port = args.port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="target-kinesis-local-"))
    try:
        with moto_server(port, workdir / "moto.log") as url:
            try:
                created = create_everything(url, settings, args.shards)
            except (ClientError, BotoCoreError) as exc:
                raise ToolError(f"cannot create what the config names on the local endpoint: {exc}") from None
            print(f"endpoint_url {url}", flush=True)
            for line in created:
                print(f"created {line}")
            for line in next_steps(url, args.config, settings):
                print(line)
            sys.stdout.flush()
            try:
                while True:
                    signal.pause()
            except Stopped:
                pass
    finally:
        ignore_signals()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{PROG}: stopped; nothing left running", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `target-kinesis-local`; returns the exit code."""
    args = parse_args(argv)
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    try:
        run(args)
    except Stopped:  # before the endpoint answered: what was started is stopped all the same
        print(f"{PROG}: stopped; nothing left running", file=sys.stderr)
    except (ToolError, EndpointError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    return 0


__all__ = ["FIREHOSE_BUCKET", "main"]

if __name__ == "__main__":
    sys.exit(main())
