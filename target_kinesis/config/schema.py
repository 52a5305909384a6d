"""The settings contract as JSON Schema: what `--about`, Meltano and validation read.

Setting names are a public interface (SPEC.md). Every default lives here and only here:
`Settings.from_config` fills what a config leaves out from these `default`s, and which
settings are secret is read from their `secret` flag. Plain JSON Schema (the shape the
Singer SDK's typing helpers produce), so that nothing below the Singer layer imports the SDK.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from target_kinesis.aws.services import SERVICES

#: Both services take 500 records a call; aws/kinesis.py and aws/firehose.py hold the number.
MAX_BATCH_RECORDS = min(service.limits.max_batch_records for service in SERVICES.values())
SERVICE_NAMES = ["kinesis", "firehose"]


def _setting(kind: str | list[str], description: str, *, default: Any = None, **keywords: Any) -> dict[str, Any]:
    """One optional setting: its type (null allowed, as every setting may be left out)."""
    kinds = [kind] if isinstance(kind, str) else list(kind)
    schema: dict[str, Any] = {"type": [*kinds, "null"], **keywords}
    if default is not None:
        schema["default"] = default
    schema["description"] = description
    return schema


def _secret(description: str) -> dict[str, Any]:
    return {**_setting("string", description), "secret": True, "writeOnly": True}


def _seconds(description: str, *, default: float | None = None, **bounds: float) -> dict[str, Any]:
    """A number of seconds, also accepted as numeric text.

    Meltano 4.4 cannot pass a `decimal` setting set by environment variable (it fails to
    serialize the Decimal), so meltano.yml declares these as strings and we accept "2.5" as
    well as 2.5. Bounds apply to numbers; text is checked in `Settings.from_config`.
    """
    return _setting(["number", "string"], description, default=default, pattern=r"^\s*[0-9]+(\.[0-9]+)?\s*$", **bounds)


def _choice(description: str, values: list[str], *, default: str | None = None) -> dict[str, Any]:
    return _setting("string", description, default=default, enum=values)


def _names(description: str) -> dict[str, Any]:
    return _setting("array", description, items={"type": ["string"]})


EVENT_SPEC_DOC = (
    "Object keyed by Singer stream name; each value may set: type (track, identify, page, screen, "
    "group, alias, passthrough, audience; default track), event, event_field, user_id_field, "
    "anonymous_id_field, timestamp_field, message_id_field, message_id (content, the default: a new id when "
    "the record changes; keys: stream and key properties alone, one row one event), group_id_field, previous_id_field, "
    "name_field, include_fields, exclude_fields, and for audiences audience_field, member_field, "
    "audience_id_field, audience_format (segment or mparticle), identity_fields."
)

#: `aggregation`: none, or one service's way of packing events into records.
AGGREGATIONS = ["none", "kpl", "lines"]

PROPERTIES: dict[str, dict[str, Any]] = {
    # -- where to write
    "region": _setting(
        "string",
        "AWS region of the streams. Default, as the AWS CLI finds it: AWS_REGION, else AWS_DEFAULT_REGION, else "
        "the region of the profile (aws_profile, else AWS_PROFILE, else default) in the AWS config file, else "
        "us-east-1; the start-up line names the region and where it came from.",
    ),
    "endpoint_url": _setting(
        "string",
        "Endpoint override for every AWS call, STS included (a local Kinesis-compatible server, a VPC endpoint).",
    ),
    "service": _choice(
        "Service of any destination that does not name one: kinesis (Data Streams) or firehose.",
        SERVICE_NAMES,
        default="kinesis",
    ),
    "stream_name": _setting(
        "string",
        "Shorthand: send every event to this one stream. Exactly one of stream_name or destinations is required.",
    ),
    "destinations": _setting(
        "array",
        "Routing rules {event, stream, service?, aggregation?}: event is matched against the track event name, then the "
        "event type, then '*'; case-insensitive; the most specific level wins and all its rules receive the event.",
        items={
            "type": "object",
            "properties": {
                "event": {"type": ["string"]},
                "stream": {"type": ["string"]},
                "service": {"type": ["string", "null"], "enum": SERVICE_NAMES},
                "aggregation": {"type": ["string", "null"], "enum": [*AGGREGATIONS, None]},
            },
            "required": ["event", "stream"],
            "additionalProperties": False,
        },
    ),
    # -- credentials
    "aws_access_key_id": _setting(
        "string", "Static access key; when absent the standard AWS credential chain is used."
    ),
    "aws_secret_access_key": _secret("Static secret key."),
    "aws_session_token": _secret("Session token of temporary static keys."),
    "aws_profile": _setting("string", "A named profile of the shared AWS config files."),
    "role_arn": _setting("string", "Role to assume with STS before writing; credentials refresh before they expire."),
    "external_id": _secret("The ExternalId passed to AssumeRole."),
    "role_session_name": _setting("string", "RoleSessionName of AssumeRole.", default="target-kinesis"),
    "role_session_duration_seconds": _setting(
        "integer",
        "DurationSeconds of AssumeRole (900 to 43200, within the role's maximum); credentials are refreshed "
        "well before they expire.",
        default=3600,
        minimum=900,
        maximum=43200,
    ),
    # -- record to event
    "events": _setting("object", EVENT_SPEC_DOC, properties={}, additionalProperties=True),
    "exclude_fields": _names(
        "Dotted paths removed from every finished event, e.g. traits.email (a path must start with a field of "
        "the event, or of a passthrough record: a path that cannot match is refused at start)."
    ),
    "hash_fields": _names(
        "Dotted paths into every finished event (e.g. traits.email) replaced by the hex SHA-256 of their trimmed, "
        "lower-cased value (a path must start with a field of the event, or of a passthrough record: a path that "
        "cannot match is refused at start)."
    ),
    "send_anonymous_users": _setting(
        "boolean", "When false, events without a userId are dropped (counted in the summary).", default=True
    ),
    # -- the record written
    "partition_key": _setting(
        "string",
        "Kinesis partition key: a dotted path into the event; userId falls back to anonymousId; messageId "
        "spreads load evenly; random picks a random key; a missing value falls back to messageId.",
        default="userId",
    ),
    "append_newline": _setting(
        "boolean", "Append a newline to each record. Default: true for Firehose, false for Kinesis."
    ),
    # -- batching, limits, retries
    "max_batch_records": _setting(
        "integer",
        "Records per PutRecords / PutRecordBatch call (at most 500).",
        default=MAX_BATCH_RECORDS,
        minimum=1,
        maximum=MAX_BATCH_RECORDS,
    ),
    "max_batch_bytes": _setting(
        "integer",
        "Bytes per call, data plus partition keys. Default 5 MiB Kinesis, 4 MiB Firehose; never above the "
        "service limit.",
        minimum=1,
    ),
    "max_record_bytes": _setting(
        "integer",
        "A record above this is oversized. Default: the Kinesis stream's MaxRecordSizeInKiB from the preflight "
        "describe call, else 1 MiB; 1,000 KiB for Firehose.",
        minimum=1,
    ),
    "max_concurrent_requests": _setting(
        "integer", "Calls in flight at once per destination stream.", default=4, minimum=1, maximum=64
    ),
    "max_retries": _setting(
        "integer",
        "Retries of a failing record or call, with exponential backoff and full jitter.",
        default=10,
        minimum=0,
        maximum=100,
    ),
    "retry_base_delay": _seconds(
        "Seconds of the first backoff; each retry doubles it (full jitter), up to retry_max_delay.",
        default=0.1,
        minimum=0,
        maximum=60,
    ),
    "retry_max_delay": _seconds(
        "Longest backoff between two attempts, in seconds.", default=10, minimum=0, maximum=300
    ),
    "on_oversized_record": _choice(
        "What to do with a record above max_record_bytes: fail, skip (logged, counted) or dead_letter.",
        ["fail", "skip", "dead_letter"],
        default="fail",
    ),
    "dead_letter_path": _setting(
        "string",
        "JSON-lines file (created 0600), or an s3://bucket/prefix/ URL (JSON-lines objects written with the target's "
        "credentials, role and endpoint), for records that are skipped or cannot be delivered, each with its reason.",
    ),
    "preflight_check": _setting(
        "boolean",
        "Before reading input, describe every destination stream; stop if one is missing, not active or not permitted.",
        default=True,
    ),
    "state_flush_seconds": _seconds(
        "When a STATE arrives and this long has passed since the last checkpoint, deliver everything buffered "
        "and emit STATE.",
        default=60,
        minimum=0,
    ),
    "drain_timeout_seconds": _seconds(
        "After SIGTERM or SIGINT, how long delivering what was read may take; then (or at a second signal) the "
        "run stops at once with a non-zero exit.",
        default=30,
        exclusiveMinimum=0,
    ),
    "rate_limit_percent": _setting(
        "integer",
        "Share of each Kinesis shard's write capacity (1,000 records and 1 MiB a second) this target may use; "
        "lower it when other producers write to the same stream.",
        default=100,
        minimum=1,
        maximum=100,
    ),
    "max_records_per_second": _setting(
        "integer",
        "Optional cap on records a second per destination stream (e.g. a Firehose quota).",
        minimum=1,
    ),
    "max_bytes_per_second": _setting(
        "integer",
        "Optional cap on bytes a second per destination stream (data plus partition keys).",
        minimum=1,
    ),
    "stall_timeout_seconds": _seconds(
        "Throttling fails the run only when a destination accepted nothing for this long while records waited "
        "for capacity; refusals for throughput are otherwise sent again when there is room.",
        default=300,
        exclusiveMinimum=0,
    ),
    "aggregation": _choice(
        "kpl (Kinesis): pack events of one shard into KPL aggregated records, read back one by one by the KCL "
        "and AWS's deaggregation modules; lines (Firehose): join newline-terminated events into one record. "
        "Applies to the destinations of its service; a destinations rule may set its own.",
        AGGREGATIONS,
        default="none",
    ),
    "aggregation_max_bytes": _setting(
        "integer",
        "Bytes of one aggregated record. Default: 51,200 for kpl (as the KPL), 1,024,000 for lines; never above "
        "the stream's record limit.",
        minimum=1024,
    ),
    "aggregation_max_records": _setting(
        "integer",
        "Events in one aggregated record. Default: none for kpl, 500 for lines (what Firehose's multi-record "
        "deaggregation takes).",
        minimum=1,
    ),
    "ordering": _choice(
        "per_key: records with the same partition key reach the stream in input order, even across retries.",
        ["none", "per_key"],
        default="none",
    ),
    "mapping_processes": _setting(
        "integer",
        "Processes that parse, validate and map records beside the one that sends them; 0 does all of it in "
        "one process. Default: one per CPU (container CPU limits included), at most 4; 0 with a single CPU.",
        minimum=0,
        maximum=64,
    ),
    "connect_timeout": _seconds("Seconds, for every AWS call.", default=10, exclusiveMinimum=0),
    "read_timeout": _seconds("Seconds, for every AWS call.", default=60, exclusiveMinimum=0),
}

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": PROPERTIES,
    "$schema": "https://json-schema.org/draft/2020-12/schema",
}

#: Settings whose values never appear in a log line, an error or a record.
SECRET_SETTINGS = frozenset(name for name, schema in PROPERTIES.items() if schema.get("secret"))


def with_defaults(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` with every setting it leaves out (or sets to null) at its schema default."""
    filled = dict(config)
    for name, schema in PROPERTIES.items():
        if filled.get(name) is None and "default" in schema:
            filled[name] = schema["default"]
    return filled
