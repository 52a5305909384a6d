"""`target-kinesis-redrive`: send dead letters again, as the target would have sent them.

    target-kinesis-redrive --config config.json SOURCE [SOURCE ...]
                           [--stream NAME] [--service kinesis|firehose]
                           [--dead-letter-path PATH] [--keep]

SOURCE is a dead-letter file, or an ``s3://bucket/prefix/`` URL (every object under the
prefix, in key order). Each event goes to the stream its dead letter names, or to
``--stream`` (and ``--service``) for all of them, through the target's own delivery layer
(`run/start.py`'s writer: the same producers, pacing at the stream's capacity, aggregation,
retries and error lines); nothing here sends a record itself. The event's bytes are sent as
stored (`delivery/dead_letters.read_letters`), so its messageId and every field are the ones
that failed; a Kinesis record keeps its partition key.

Acknowledged first, deleted after: a source (file, or S3 object) is deleted only once AWS
acknowledged every event in it (`--keep`: never deleted). A source whose events are not all
acknowledged stays where it is, whole. What fails again becomes new dead letters, at
``--dead-letter-path`` or else the config's ``dead_letter_path`` (never the file being read);
the first delivery failure stops the redrive, and the sources after it are left untouched.

stdout carries one JSON report; stderr the log lines, the SDK-format METRIC lines and, on
failure, one line ``target-kinesis-redrive: ...`` (exit 1; 2 for bad arguments). No traceback,
no secret.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from target_kinesis.aws.clients import AwsClients
from target_kinesis.aws.errors import AwsCallFailed, explain
from target_kinesis.aws.s3 import S3Location, S3UrlError, delete_object, get_object, is_url, list_keys, parse_s3_url
from target_kinesis.aws.services import SERVICES, stream_name_problem
from target_kinesis.config.destinations import Destination
from target_kinesis.config.settings import Settings
from target_kinesis.delivery.dead_letters import DeadLetters, StoredLetter, read_letters
from target_kinesis.delivery.encoding import Encoded, Encoder
from target_kinesis.delivery.metric_points import Point, PointTally
from target_kinesis.delivery.partition_keys import PartitionKeys
from target_kinesis.delivery.privacy import Privacy
from target_kinesis.delivery.routing import Router
from target_kinesis.delivery.writer import EventWriter
from target_kinesis.errors import TargetKinesisError
from target_kinesis.log_safety import guard_logs
from target_kinesis.run.start import open_dead_letters, start_writer
from target_kinesis.tools.cli import ToolError, ToolParser, UsageError, read_config, settings_of, usage_line

PROG = "target-kinesis-redrive"
logger = logging.getLogger("target-kinesis")
#: The Singer SDK's metrics logger (`singer_sdk.metrics`): its METRIC lines, without loading the SDK.
metrics_logger = logging.getLogger("singer_sdk.metrics")
#: A config must name a destination to be checked; one without gets this (never sent to).
_PLACEHOLDER_STREAM = "target-kinesis-redrive"


@dataclass
class Source:
    """One dead-letter file or S3 object, and what became of it."""

    url: str
    path: str | None = None
    bucket: str | None = None
    key: str | None = None
    letters: list[StoredLetter] = field(default_factory=list)
    sent: int = 0
    #: deleted | kept (--keep) | left (not every event acknowledged) | not tried
    status: str = "not tried"

    def report(self) -> dict[str, Any]:
        return {"source": self.url, "events": len(self.letters), "sent": self.sent, "status": self.status}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = ToolParser(prog=PROG, description="Send dead letters again, with the target's pacing and retries.")
    parser.add_argument("sources", nargs="+", metavar="SOURCE", help="a dead-letter file or s3://bucket/prefix/")
    parser.add_argument("--config", required=True, help="the target's config.json (credentials, role, endpoint)")
    parser.add_argument("--stream", help="send every event here instead of the stream its dead letter names")
    parser.add_argument("--service", choices=tuple(SERVICES), help="with --stream: its service (default: the letter's)")
    parser.add_argument(
        "--dead-letter-path", help="where what fails again is written (default: the config's dead_letter_path)"
    )
    parser.add_argument("--keep", action="store_true", help="never delete a source, even when all of it was sent")
    args = parser.parse_args(argv)
    if args.service and not args.stream:
        parser.error("--service goes with --stream")
    return args


def redrive_config(file_config: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    config = dict(file_config)
    if args.dead_letter_path:
        config["dead_letter_path"] = args.dead_letter_path
    if not config.get("stream_name") and not config.get("destinations"):
        config["stream_name"] = args.stream or _PLACEHOLDER_STREAM
    config["mapping_processes"] = 0
    return config


def find_sources(args: argparse.Namespace, s3: Any) -> list[Source]:
    """Every source named, S3 prefixes listed; ToolError for one that names nothing."""
    sources: list[Source] = []
    for value in args.sources:
        if not is_url(value):
            if not os.path.isfile(value):
                raise ToolError(f"{value}: no such dead-letter file")
            sources.append(Source(value, path=value))
            continue
        try:
            location = parse_s3_url(value)
        except S3UrlError as exc:
            raise ToolError(f"source {exc}") from None
        try:
            keys = list_keys(s3, location)
        except AwsCallFailed as exc:
            raise ToolError(_s3_line(exc, location, "list", "s3:ListBucket")) from None
        if not keys:
            raise ToolError(f"{location.url}: no dead-letter objects under it")
        sources.extend(Source(location.object_url(k), bucket=location.bucket, key=k) for k in keys)
    return sources


def _s3_line(exc: AwsCallFailed, location: S3Location, verb: str, action: str) -> str:
    return explain(
        exc.error,
        where=location.url,
        verb=verb,
        needed=f"{action} on arn:aws:s3:::{location.bucket}/{location.prefix}* is needed",
        check="check the bucket and prefix, and that the credentials are for its account",
    )


def read_source(source: Source, s3: Any) -> None:
    if source.path is not None:
        try:
            with open(source.path, "rb") as handle:
                body = handle.read()
        except OSError as exc:
            raise ToolError(f"{source.path}: cannot read: {exc.strerror}") from None
    else:
        assert source.bucket is not None and source.key is not None
        try:
            body = get_object(s3, source.bucket, source.key)
        except AwsCallFailed as exc:
            raise ToolError(_s3_line(exc, S3Location(source.bucket, source.key), "read", "s3:GetObject")) from None
    source.letters = read_letters(body, source.url)


def delete_source(source: Source, s3: Any) -> None:
    """After every event of `source` was acknowledged, and only then."""
    if source.path is not None:
        try:
            os.unlink(source.path)
        except OSError as exc:
            raise ToolError(
                f"{source.path}: every event was sent, but the file cannot be deleted: {exc.strerror}"
            ) from None
        return
    assert source.bucket is not None and source.key is not None
    try:
        delete_object(s3, source.bucket, source.key)
    except AwsCallFailed as exc:
        line = _s3_line(exc, S3Location(source.bucket, source.key), "delete", "s3:DeleteObject")
        raise ToolError(f"every event was sent, but: {line}") from None


def destination_of(letter: StoredLetter, args: argparse.Namespace) -> Destination:
    service = args.service or letter.service
    stream = args.stream or letter.stream
    if service not in SERVICES:
        raise ToolError(f"a dead letter names the service '{service}', which is neither kinesis nor firehose")
    problem = stream_name_problem(SERVICES[service], stream)
    if problem:
        raise ToolError(f"a dead letter names the {service} stream '{stream}', which {problem}")
    return Destination(service, stream)


def stored_encoder(settings: Settings, destinations: Iterable[Destination]) -> Encoder:
    """An encoder for events encoded before: no routing, no privacy (they were applied when the
    events were first encoded); the destinations' newline and aggregation as the config says."""
    return Encoder(
        Router(()),
        sorted(set(destinations)),
        privacy=Privacy(),
        partition_keys=PartitionKeys(settings.partition_key),
        newline=settings.newline,
        packed=lambda destination: settings.aggregation_for(destination) != "none",
    )


def _acknowledged(writer: EventWriter) -> dict[Destination, tuple[int, int]]:
    """Per destination: events acknowledged, and events given up on (failed, dead-lettered, skipped)."""
    found = {}
    for destination, producer in writer.producers.items():
        s = producer.stats.snapshot()
        found[destination] = (s["records_sent"], s["failed"] + s["skipped"] + s["dead_lettered"])
    return found


def send(sources: list[Source], writer: EventWriter, args: argparse.Namespace, s3: Any) -> None:
    """Each source's events, then wait for AWS, then (only then) delete it. Raises on the first
    delivery failure, with that source and those after it left in place."""
    encoder = writer.encoder
    for source in sources:
        records: list[Encoded] = []
        for letter in source.letters:
            encoder.encode_stored(destination_of(letter, args), letter.data, letter.partition_key, records)
        before = _acknowledged(writer)
        try:
            writer.write_encoded(records)
            writer.flush()
        finally:
            after = _acknowledged(writer)
            source.sent = sum(after[d][0] - before[d][0] for d in after)
            given_up = sum(after[d][1] - before[d][1] for d in after)
            source.status = "left"
        if given_up or source.sent != len(records):
            logger.warning(
                "redrive: %s: %d of %d event(s) acknowledged, %d given up on: left in place",
                source.url,
                source.sent,
                len(records),
                given_up,
            )
            continue
        if args.keep:
            source.status = "kept"
        else:
            delete_source(source, s3)
            source.status = "deleted"
        logger.info("redrive: %s: %d event(s) sent again and acknowledged; %s", source.url, source.sent, source.status)


def metric(point: Point) -> None:
    """One METRIC line in the Singer SDK's own format (`singer_sdk.metrics.Point`)."""
    metrics_logger.info("METRIC: %s", json.dumps(point._asdict(), default=str, separators=(",", ":")))


def log_metrics(sources: list[Source], writer: EventWriter | None, args: argparse.Namespace) -> None:
    """Dead letters redriven, by the error code they carried and whether their source was wholly
    acknowledged; then, per destination, the target's own METRIC points (delivery.metric_points):
    calls, refusals, retries, and events dead-lettered again by error code."""
    redriven: Counter[tuple[str, str, str]] = Counter()
    for source in sources:
        if source.status == "not tried":
            continue
        status = "succeeded" if source.status in ("deleted", "kept") else "failed"
        for letter in source.letters:
            redriven[(str(destination_of(letter, args)), letter.error_code or "none", status)] += 1
    for (endpoint, code, status), value in sorted(redriven.items()):
        metric(
            Point("counter", "redriven_records", value, {"endpoint": endpoint, "error_code": code, "status": status})
        )
    if writer is not None:
        for point in PointTally(writer.producers).points():
            metric(point)


def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = settings_of(redrive_config(read_config(args.config), args))
    guard_logs(settings.secret_values())
    clients = AwsClients(settings.aws_access(), max_pool_connections=max(10, settings.max_concurrent_requests * 4 + 2))
    s3 = clients.client("s3") if any(is_url(v) for v in args.sources) else None
    sources = find_sources(args, s3)
    if settings.dead_letter_path and not is_url(settings.dead_letter_path):
        new = os.path.realpath(settings.dead_letter_path)
        if any(source.path and os.path.realpath(source.path) == new for source in sources):
            raise UsageError(
                f"the new dead letters would be written to {settings.dead_letter_path}, which is being redriven; "
                "give --dead-letter-path another file"
            )
    for source in sources:
        read_source(source, s3)
    events = sum(len(source.letters) for source in sources)
    destinations = {destination_of(letter, args) for source in sources for letter in source.letters}
    logger.info(
        "redrive: %d event(s) in %d source(s), to %s", events, len(sources), ", ".join(map(str, sorted(destinations)))
    )
    report: dict[str, Any] = {
        "events": events,
        "sent": 0,
        "failed_again": 0,
        "dead_letter_path": settings.dead_letter_path,
    }
    writer: EventWriter | None = None
    dead_letters: DeadLetters | None = None
    failure: BaseException | None = None
    stopped_on: str | None = None
    try:
        if destinations:
            dead_letters = open_dead_letters(settings, clients)
            writer = start_writer(settings, stored_encoder(settings, destinations), clients, dead_letters, logger)
            send(sources, writer, args, s3)
    except TargetKinesisError as exc:
        failure, stopped_on = exc, str(exc)
    except BaseException as exc:
        failure = exc
        raise
    finally:
        if writer is not None:
            writer.close()
            for line in writer.summary_lines():
                logger.info(line)
        log_metrics(sources, writer, args)
        if dead_letters is not None:
            try:
                dead_letters.close()
            except TargetKinesisError as exc:
                if failure is None:
                    raise
                logger.error("%s: %s", PROG, exc)
        report["sent"] = sum(source.sent for source in sources)
        if writer is not None:
            report["failed_again"] = sum(p.stats.snapshot()["dead_lettered"] for p in writer.producers.values())
        # Events neither acknowledged nor dead-lettered again: those not yet sent when a failure
        # stopped the redrive, and those of the sources not tried. Their sources hold them still.
        report["not_sent"] = events - report["sent"] - report["failed_again"]
        report["sources"] = [source.report() for source in sources]
        print(json.dumps(report), flush=True)
    left = [source.url for source in sources if source.status in ("left", "not tried")]
    if stopped_on is not None or left:
        parts = [stopped_on] if stopped_on else []
        if left:
            parts.append(f"{len(left)} source(s) not wholly acknowledged, left in place: {', '.join(left)}")
        if report["failed_again"]:
            parts.append(f"{report['failed_again']} event(s) failed again, written to {settings.dead_letter_path}")
        raise ToolError("; ".join(parts))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `target-kinesis-redrive`; returns the exit code."""
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        run(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; every source not reported deleted is left in place", file=sys.stderr)
        return 130
    except UsageError as exc:
        sys.stderr.write(usage_line(PROG, str(exc)))
        return 2
    except (ToolError, TargetKinesisError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
