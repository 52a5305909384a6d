"""`target-kinesis-tail`: print the events that landed in a Kinesis stream or a Firehose bucket.

An operator tool to check what the target wrote, with the target's own credential and
endpoint settings (static keys, profile, role_arn + external_id, endpoint_url, region):

    target-kinesis-tail [--config config.json|ENV] --stream NAME [--service kinesis|firehose]
                        [--bucket B] [--prefix P] [--from trim_horizon|latest] [--follow]
                        [--limit N] [--show-keys] [--endpoint-url URL] [--region R]

``--config ENV`` reads the settings from TARGET_KINESIS_<SETTING> environment variables
(config/env.py), as `meltano invoke target-kinesis:tail` passes them.

Kinesis: every shard is read (ListShards, GetShardIterator, GetRecords), from TRIM_HORIZON
or LATEST. A child shard waits until its parent shard has been read to its end, so a key's
events keep their order across a reshard. Without ``--follow`` the tail stops once every
shard is caught up (an empty page with MillisBehindLatest 0, or a closed shard read to its
end); with ``--follow`` it polls about every second, picks up new shards, and re-opens a
shard whose iterator expired after the last sequence number it printed.

Firehose: the objects the delivery stream wrote to S3 (``--bucket``; when not given it is
read from DescribeDeliveryStream), every object under ``--prefix`` in key order, gzip
undone, split into lines (and back-to-back JSON objects written without a newline are
split too). With ``--from latest`` the objects already there are skipped; ``--follow``
polls for new keys.

A record that packs several events (the target's ``aggregation``) is printed one event a
line, in order: a KPL aggregate (``kpl``) as its user records, and a record of JSON lines
(``lines``) as its lines. In an S3 object those lines are lines of the object already.

stdout carries one JSON line per event and nothing else: the event's data as-is when it is
JSON (without its trailing newline), otherwise the data as a JSON string. With ``--show-keys``
(Kinesis only) each line is instead an object naming where the event was read:

    {"shard":"shardId-000000000001","partition_key":"u1","event":<the line printed without it>}

``partition_key`` is the event's own: a KPL aggregate's user record has its own key (the
aggregate's key only chose the shard), and the lines of a JSON-lines record share the record's.
Firehose's S3 objects keep neither keys nor shards, so ``--show-keys`` with Firehose is a usage
error. Errors are one line on stderr and exit 1 (2 for bad arguments); Ctrl-C exits 0.

Permissions needed: kinesis:ListShards, kinesis:GetShardIterator, kinesis:GetRecords (and
kms:Decrypt on an encrypted stream's key); for Firehose s3:ListBucket and s3:GetObject (and
firehose:DescribeDeliveryStream when --bucket is not given).

This module is the command (its arguments, the config, exit codes); the parts it drives are
`tail_reading` (shards and S3 objects), `tail_decoding` (the events a record or object
holds) and `tail_printing` (the lines on stdout).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from target_kinesis.aws.clients import AwsClients
from target_kinesis.aws.services import SERVICES, stream_name_problem
from target_kinesis.errors import TargetKinesisError
from target_kinesis.tools.cli import (
    CONFIG_HELP,
    ToolError,
    ToolParser,
    UsageError,
    read_config,
    settings_of,
    usage_line,
)
from target_kinesis.tools.tail_printing import Output
from target_kinesis.tools.tail_reading import Caller, FirehoseTail, KinesisTail, firehose_bucket, kinesis_explainer

PROG = "target-kinesis-tail"
SHOW_KEYS_FIREHOSE = "--show-keys: Firehose (S3) keeps no partition keys or shards; it works with --service kinesis"


# -- the target's config, with the flags on top ---------------------------------------------


def tail_config(
    file_config: Mapping[str, Any],
    *,
    stream: str,
    service: str,
    endpoint_url: str | None,
    region: str | None,
) -> dict[str, Any]:
    """The target config to build credentials from: the file's, with the flags on top.

    Settings.from_config needs a destination; a config without one gets ``--stream``.
    """
    config = dict(file_config)
    if endpoint_url:
        config["endpoint_url"] = endpoint_url
    if region:
        config["region"] = region
    if not config.get("stream_name") and not config.get("destinations"):
        config["stream_name"] = stream
        config["service"] = service
    return config


def config_service(config: Mapping[str, Any], stream: str) -> str | None:
    """The service the config routes `stream` to, or None when it does not name it."""
    default = config.get("service") or "kinesis"
    if config.get("stream_name") == stream:
        return default
    for rule in config.get("destinations") or ():
        if isinstance(rule, Mapping) and rule.get("stream") == stream:
            return rule.get("service") or default
    return None


# -- command line -----------------------------------------------------------------------


def _limit(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = ToolParser(
        prog=PROG, description="Print the events in a Kinesis stream or a Firehose bucket, one JSON line each."
    )
    parser.add_argument("--config", help=CONFIG_HELP + "; credentials, role, endpoint_url, region")
    parser.add_argument("--stream", help="Kinesis stream or Firehose delivery stream name")
    parser.add_argument("--service", choices=("kinesis", "firehose"), help="default: the config's, else kinesis")
    parser.add_argument("--bucket", help="Firehose: the S3 bucket (default: read from the delivery stream)")
    parser.add_argument("--prefix", help="Firehose: key prefix (default: the delivery stream's)")
    parser.add_argument(
        "--from",
        dest="start",
        choices=("trim_horizon", "latest"),
        default="trim_horizon",
        help="Kinesis shards: where to start; Firehose: latest skips objects already there",
    )
    parser.add_argument("--follow", action="store_true", help="keep polling for new events until interrupted")
    parser.add_argument("--limit", type=_limit, help="stop after N events")
    parser.add_argument(
        "--show-keys",
        action="store_true",
        help='Kinesis: print {"shard": ..., "partition_key": ..., "event": ...} per event',
    )
    parser.add_argument("--endpoint-url", help="overrides the config's endpoint_url")
    parser.add_argument("--region", help="overrides the config's region")
    args = parser.parse_args(argv)
    if args.show_keys and args.service == "firehose":
        parser.error(SHOW_KEYS_FIREHOSE)
    return args


def _only_destination(config: Mapping[str, Any]) -> str | None:
    if config.get("stream_name"):
        return str(config["stream_name"])
    rules = [r for r in config.get("destinations") or () if isinstance(r, Mapping)]
    streams = {r.get("stream") for r in rules}
    return str(streams.pop()) if len(streams) == 1 else None


def run(args: argparse.Namespace, out: Output) -> None:
    file_config = read_config(args.config) if args.config else {}
    stream = args.stream or _only_destination(file_config)
    if not stream:
        raise ToolError("--stream is required (the config names no single stream)")
    service = args.service or config_service(file_config, stream) or "kinesis"
    if args.show_keys and service == "firehose":  # the config routes the stream to Firehose
        raise UsageError(SHOW_KEYS_FIREHOSE)
    problem = stream_name_problem(SERVICES[service], stream)
    if problem:
        raise ToolError(f"--stream: {service} stream name '{stream}' {problem}")
    config = tail_config(
        file_config, stream=stream, service=service, endpoint_url=args.endpoint_url, region=args.region
    )
    settings = settings_of(config)
    clients = AwsClients(settings.aws_access())
    caller = Caller(refresh=clients.refresh_credentials)
    start = args.start.upper()
    if service == "kinesis":
        explain = kinesis_explainer(stream, settings.region)
        KinesisTail(clients.client("kinesis"), stream, caller, explain, start=start, follow=args.follow).run(out)
        return
    bucket, prefix = args.bucket, args.prefix
    if not bucket:
        bucket, found_prefix = firehose_bucket(clients.client("firehose"), stream, settings.region, caller)
        prefix = found_prefix if prefix is None else prefix
    FirehoseTail(clients.client("s3"), bucket, prefix or "", caller, start=start, follow=args.follow).run(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `target-kinesis-tail`; returns the exit code."""
    args = parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(encoding="utf-8")
    out = Output(sys.stdout, args.limit, show_keys=args.show_keys)
    try:
        if args.limit != 0:
            run(args, out)
        out.flush()
    except KeyboardInterrupt:
        _quiet_flush(out)
        return 0
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except UsageError as exc:
        sys.stderr.write(usage_line(PROG, str(exc)))
        return 2
    except (ToolError, TargetKinesisError) as exc:
        _quiet_flush(out)
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    return 0


def _quiet_flush(out: Output) -> None:
    try:
        out.flush()
    except (BrokenPipeError, KeyboardInterrupt):
        _silence_stdout()


def _silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the exit flush cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
