"""The settings contract: the JSON schema users see, and its checked, typed form.

Setting names are a public interface (SPEC.md). The schema feeds `--about`, Meltano and
config validation; `Settings.from_config` enforces the rules JSON schema cannot express
(exactly one of stream_name/destinations, stream-name patterns per service, limits that
depend on the service) and turns every violation into one line that names the setting
and never repeats the value of a secret.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from singer_sdk import typing as th

from target_kinesis.errors import ConfigError
from target_kinesis.mapping import EventSpec
from target_kinesis.routing import Destination, Rule
from target_kinesis.services import SERVICES, stream_name_problem


def _seconds(**bounds: float) -> th.CustomType:
    """A number of seconds, also accepted as numeric text.

    Meltano 4.4 cannot pass a `decimal` setting set by environment variable (it fails to
    serialize the Decimal), so meltano.yml declares these as strings and we accept
    "2.5" as well as 2.5. Bounds apply to numbers; text is checked in from_config.
    """
    return th.CustomType({"type": ["number", "string"], "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*$", **bounds})


#: What botocore accepts as a region: one DNS label (it becomes part of the endpoint's host name).
_REGION = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")

SECRET_SETTINGS = frozenset({"aws_secret_access_key", "aws_session_token", "external_id"})
# Both services take 500 records a call; services.py holds the number.
MAX_BATCH_RECORDS = min(service.limits.max_batch_records for service in SERVICES.values())

_EVENT_SPEC_DOC = (
    "Object keyed by Singer stream name; each value may set: type (track, identify, page, screen, "
    "group, alias, passthrough, audience; default track), event, event_field, user_id_field, "
    "anonymous_id_field, timestamp_field, message_id_field, group_id_field, previous_id_field, "
    "name_field, include_fields, exclude_fields, and for audiences audience_field, member_field, "
    "audience_id_field, audience_format (segment or mparticle), identity_fields."
)

CONFIG_SCHEMA: dict[str, Any] = th.PropertiesList(
    # -- where to write
    th.Property("region", th.StringType, description="AWS region of the streams. Default: AWS_REGION, else us-east-1."),
    th.Property(
        "endpoint_url",
        th.StringType,
        description="Endpoint override for every AWS call, STS included (a local Kinesis-compatible server, a VPC endpoint).",
    ),
    th.Property(
        "service",
        th.StringType,
        allowed_values=["kinesis", "firehose"],
        default="kinesis",
        description="Service of any destination that does not name one: kinesis (Data Streams) or firehose.",
    ),
    th.Property(
        "stream_name",
        th.StringType,
        description="Shorthand: send every event to this one stream. Exactly one of stream_name or destinations is required.",
    ),
    th.Property(
        "destinations",
        th.ArrayType(
            th.ObjectType(
                th.Property("event", th.StringType, required=True),
                th.Property("stream", th.StringType, required=True),
                th.Property("service", th.StringType, allowed_values=["kinesis", "firehose"]),
                additional_properties=False,
            )
        ),
        description=(
            "Routing rules {event, stream, service?}: event is matched against the track event name, then the "
            "event type, then '*'; case-insensitive; the most specific level wins and all its rules receive the event."
        ),
    ),
    # -- credentials
    th.Property(
        "aws_access_key_id",
        th.StringType,
        description="Static access key; when absent the standard AWS credential chain is used.",
    ),
    th.Property("aws_secret_access_key", th.StringType, secret=True, description="Static secret key."),
    th.Property("aws_session_token", th.StringType, secret=True, description="Session token of temporary static keys."),
    th.Property("aws_profile", th.StringType, description="A named profile of the shared AWS config files."),
    th.Property(
        "role_arn",
        th.StringType,
        description="Role to assume with STS before writing; credentials refresh before they expire.",
    ),
    th.Property("external_id", th.StringType, secret=True, description="The ExternalId passed to AssumeRole."),
    th.Property(
        "role_session_name", th.StringType, default="target-kinesis", description="RoleSessionName of AssumeRole."
    ),
    th.Property(
        "role_session_duration_seconds",
        th.IntegerType(minimum=900, maximum=43200),
        default=3600,
        description="DurationSeconds of AssumeRole (900 to 43200, within the role's maximum); credentials are refreshed well before they expire.",
    ),
    # -- record to event
    th.Property("events", th.ObjectType(additional_properties=True), description=_EVENT_SPEC_DOC),
    th.Property(
        "exclude_fields",
        th.ArrayType(th.StringType),
        description="Dotted paths removed from every finished event, e.g. traits.email.",
    ),
    th.Property(
        "hash_fields",
        th.ArrayType(th.StringType),
        description="Dotted paths replaced by the hex SHA-256 of their trimmed, lower-cased value.",
    ),
    th.Property(
        "send_anonymous_users",
        th.BooleanType,
        default=True,
        description="When false, events without a userId are dropped (counted in the summary).",
    ),
    # -- the record written
    th.Property(
        "partition_key",
        th.StringType,
        default="userId",
        description=(
            "Kinesis partition key: a dotted path into the event; userId falls back to anonymousId; messageId "
            "spreads load evenly; random picks a random key; a missing value falls back to messageId."
        ),
    ),
    th.Property(
        "append_newline",
        th.BooleanType,
        description="Append a newline to each record. Default: true for Firehose, false for Kinesis.",
    ),
    # -- batching, limits, retries
    th.Property(
        "max_batch_records",
        th.IntegerType(minimum=1, maximum=MAX_BATCH_RECORDS),
        default=MAX_BATCH_RECORDS,
        description="Records per PutRecords / PutRecordBatch call (at most 500).",
    ),
    th.Property(
        "max_batch_bytes",
        th.IntegerType(minimum=1),
        description="Bytes per call, data plus partition keys. Default 5 MiB Kinesis, 4 MiB Firehose; never above the service limit.",
    ),
    th.Property(
        "max_record_bytes",
        th.IntegerType(minimum=1),
        description=(
            "A record above this is oversized. Default: the Kinesis stream's MaxRecordSizeInKiB from the preflight "
            "describe call, else 1 MiB; 1,000 KiB for Firehose."
        ),
    ),
    th.Property(
        "max_concurrent_requests",
        th.IntegerType(minimum=1, maximum=64),
        default=4,
        description="Calls in flight at once per destination stream.",
    ),
    th.Property(
        "max_retries",
        th.IntegerType(minimum=0, maximum=100),
        default=10,
        description="Retries of a failing record or call, with exponential backoff and full jitter.",
    ),
    th.Property(
        "retry_base_delay",
        _seconds(minimum=0, maximum=60),
        default=0.1,
        description="Seconds of the first backoff; each retry doubles it (full jitter), up to retry_max_delay.",
    ),
    th.Property(
        "retry_max_delay",
        _seconds(minimum=0, maximum=300),
        default=10,
        description="Longest backoff between two attempts, in seconds.",
    ),
    th.Property(
        "on_oversized_record",
        th.StringType,
        allowed_values=["fail", "skip", "dead_letter"],
        default="fail",
        description="What to do with a record above max_record_bytes: fail, skip (logged, counted) or dead_letter.",
    ),
    th.Property(
        "dead_letter_path",
        th.StringType,
        description="JSON-lines file for records that are skipped or cannot be delivered, each with its reason.",
    ),
    th.Property(
        "preflight_check",
        th.BooleanType,
        default=True,
        description="Before reading input, describe every destination stream; stop if one is missing, not active or not permitted.",
    ),
    th.Property(
        "state_flush_seconds",
        _seconds(minimum=0),
        default=60,
        description="When a STATE arrives and this long has passed since the last checkpoint, deliver everything buffered and emit STATE.",
    ),
    th.Property(
        "drain_timeout_seconds",
        _seconds(exclusiveMinimum=0),
        default=30,
        description=(
            "After SIGTERM or SIGINT, how long delivering what was read may take; then (or at a second "
            "signal) the run stops at once with a non-zero exit."
        ),
    ),
    th.Property(
        "ordering",
        th.StringType,
        allowed_values=["none", "per_key"],
        default="none",
        description="per_key: records with the same partition key reach the stream in input order, even across retries.",
    ),
    th.Property(
        "mapping_processes",
        th.IntegerType(minimum=0, maximum=64),
        description=(
            "Processes that parse, validate and map records beside the one that sends them; 0 does all of it in "
            "one process. Default: one per CPU (container CPU limits included), at most 4; 0 with a single CPU."
        ),
    ),
    th.Property(
        "connect_timeout", _seconds(exclusiveMinimum=0), default=10, description="Seconds, for every AWS call."
    ),
    th.Property("read_timeout", _seconds(exclusiveMinimum=0), default=60, description="Seconds, for every AWS call."),
).to_dict()


@dataclass(frozen=True)
class Settings:
    """The checked configuration; built once at start-up."""

    region: str
    endpoint_url: str | None
    rules: tuple[Rule, ...]
    events: Mapping[str, EventSpec]
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)
    aws_profile: str | None = None
    role_arn: str | None = None
    external_id: str | None = field(default=None, repr=False)
    role_session_name: str = "target-kinesis"
    role_session_duration_seconds: int = 3600
    exclude_fields: tuple[str, ...] = ()
    hash_fields: tuple[str, ...] = ()
    send_anonymous_users: bool = True
    partition_key: str = "userId"
    append_newline: bool | None = None
    max_batch_records: int = MAX_BATCH_RECORDS
    max_batch_bytes: int | None = None
    max_record_bytes: int | None = None
    max_concurrent_requests: int = 4
    max_retries: int = 10
    retry_base_delay: float = 0.1
    retry_max_delay: float = 10.0
    on_oversized_record: str = "fail"
    dead_letter_path: str | None = None
    preflight_check: bool = True
    state_flush_seconds: float = 60.0
    drain_timeout_seconds: float = 30.0
    ordering: str = "none"
    mapping_processes: int = 0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    def secret_values(self) -> list[str | None]:
        """The values of the secret settings, to be masked wherever they could be logged."""
        return [getattr(self, name) for name in sorted(SECRET_SETTINGS)]

    @property
    def destinations(self) -> list[Destination]:
        return sorted({rule.destination for rule in self.rules})

    def batch_bytes(self, service: str) -> int:
        """Bytes per call for a service: the setting, never above the service's limit."""
        limits = SERVICES[service].limits
        if self.max_batch_bytes is None:
            return limits.default_batch_bytes
        return min(self.max_batch_bytes, limits.max_batch_bytes)

    def size_limits(self, destination: Destination, stream_max: int | None) -> tuple[int, int]:
        """(largest record, largest call) in bytes for one destination.

        `stream_max`: the largest record the stream itself accepts (Kinesis streams may be
        raised to 10 MiB), when the preflight read it. A call must hold the largest record:
        unset, max_batch_bytes grows to it (within the API's limit); set below it, no record
        between the two could ever be sent, which is a configuration error, not a run that
        skips or fails every such record.
        """
        limits = SERVICES[destination.service].limits
        max_record = self.record_bytes(destination.service) or stream_max or limits.default_record_bytes
        if stream_max:
            max_record = min(max_record, stream_max)
        if self.max_batch_bytes is None:
            return max_record, max(limits.default_batch_bytes, min(max_record, limits.max_batch_bytes))
        max_batch = self.batch_bytes(destination.service)
        if max_batch < max_record:
            origin = "max_record_bytes" if self.max_record_bytes else f"the largest record {destination} accepts"
            raise ConfigError(
                f"setting 'max_batch_bytes' ({max_batch}) is below {origin} ({max_record} bytes): a record "
                "between the two could never be sent; raise max_batch_bytes or set max_record_bytes at most "
                f"{max_batch}"
            )
        return max_record, max_batch

    def record_bytes(self, service: str) -> int | None:
        """The configured record maximum for a service, capped at the service's limit."""
        if self.max_record_bytes is None:
            return None
        return min(self.max_record_bytes, SERVICES[service].limits.max_record_bytes)

    def event_spec(self, stream: str) -> EventSpec:
        """How records of a Singer stream become events (a track event, unless configured)."""
        return self.events.get(stream) or EventSpec()

    def newline(self, service: str) -> bool:
        if self.append_newline is None:
            return SERVICES[service].default_append_newline
        return self.append_newline

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        service = config.get("service") or "kinesis"
        rules = _rules(config, service)
        events_raw = config.get("events") or {}
        if not isinstance(events_raw, Mapping):
            raise ConfigError("setting 'events' must be an object keyed by Singer stream name")
        events = {stream: EventSpec.from_setting(stream, raw) for stream, raw in events_raw.items()}

        on_oversized = config.get("on_oversized_record") or "fail"
        dead_letter_path = config.get("dead_letter_path") or None
        if on_oversized == "dead_letter" and not dead_letter_path:
            raise ConfigError("setting 'on_oversized_record' is dead_letter but 'dead_letter_path' is not set")
        if config.get("aws_secret_access_key") and not config.get("aws_access_key_id"):
            raise ConfigError("setting 'aws_secret_access_key' is set without 'aws_access_key_id'")
        if config.get("aws_access_key_id") and not config.get("aws_secret_access_key"):
            raise ConfigError("setting 'aws_access_key_id' is set without 'aws_secret_access_key'")
        if config.get("external_id") and not config.get("role_arn"):
            raise ConfigError("setting 'external_id' is set without 'role_arn'")
        partition_key = config.get("partition_key") or "userId"
        if not partition_key.strip("."):
            raise ConfigError("setting 'partition_key' must name a field path, messageId or random")

        seconds = {
            name: _number(config, name, default)
            for name, default in (
                ("retry_base_delay", 0.1),
                ("retry_max_delay", 10.0),
                ("state_flush_seconds", 60.0),
                ("drain_timeout_seconds", 30.0),
                ("connect_timeout", 10.0),
                ("read_timeout", 60.0),
            )
        }
        for name in ("connect_timeout", "read_timeout", "drain_timeout_seconds"):
            if seconds[name] <= 0:
                raise ConfigError(f"setting '{name}' must be greater than 0")

        region = (
            config.get("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        )
        if not _REGION.fullmatch(region):
            source = "setting 'region'" if config.get("region") else "the AWS_REGION / AWS_DEFAULT_REGION environment"
            raise ConfigError(f"{source}: '{region[:64]}' is not a region name (such as eu-west-1)")
        settings = cls(
            region=region,
            endpoint_url=config.get("endpoint_url") or None,
            rules=rules,
            events=events,
            aws_access_key_id=config.get("aws_access_key_id") or None,
            aws_secret_access_key=config.get("aws_secret_access_key") or None,
            aws_session_token=config.get("aws_session_token") or None,
            aws_profile=config.get("aws_profile") or None,
            role_arn=config.get("role_arn") or None,
            external_id=config.get("external_id") or None,
            role_session_name=config.get("role_session_name") or "target-kinesis",
            role_session_duration_seconds=int(config.get("role_session_duration_seconds") or 3600),
            exclude_fields=tuple(config.get("exclude_fields") or ()),
            hash_fields=tuple(config.get("hash_fields") or ()),
            send_anonymous_users=bool(config.get("send_anonymous_users", True)),
            partition_key=partition_key,
            append_newline=config.get("append_newline"),
            max_batch_records=int(config.get("max_batch_records") or MAX_BATCH_RECORDS),
            max_batch_bytes=config.get("max_batch_bytes"),
            max_record_bytes=config.get("max_record_bytes"),
            max_concurrent_requests=int(config.get("max_concurrent_requests") or 4),
            max_retries=10 if config.get("max_retries") is None else int(config["max_retries"]),
            retry_base_delay=seconds["retry_base_delay"],
            retry_max_delay=seconds["retry_max_delay"],
            on_oversized_record=on_oversized,
            dead_letter_path=dead_letter_path,
            preflight_check=bool(config.get("preflight_check", True)),
            state_flush_seconds=seconds["state_flush_seconds"],
            drain_timeout_seconds=seconds["drain_timeout_seconds"],
            ordering=config.get("ordering") or "none",
            mapping_processes=_mapping_processes(config.get("mapping_processes")),
            connect_timeout=seconds["connect_timeout"],
            read_timeout=seconds["read_timeout"],
        )
        # A value above every used service's limit is a mistake; one between two limits
        # (5 MiB with Kinesis and Firehose destinations) is capped per service.
        used = [SERVICES[service] for service in {d.service for d in settings.destinations}]
        for name, limit_of in (
            ("max_batch_bytes", lambda svc: svc.limits.max_batch_bytes),
            ("max_record_bytes", lambda svc: svc.limits.max_record_bytes),
        ):
            value = getattr(settings, name)
            ceiling = max(limit_of(svc) for svc in used)
            if value is not None and value > ceiling:
                names = " and ".join(sorted(svc.name for svc in used))
                raise ConfigError(f"setting '{name}' is above the {names} limit of {ceiling} bytes")
        return settings


def read_config_file(path: str) -> dict[str, Any]:
    """A JSON config file as the target and the operator tools read it; ConfigError names
    the file and the problem, never a value (the file may hold secrets)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    if not text.strip():
        raise ConfigError(f"config file {path} is empty (it must hold a JSON object of settings)")
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"config file {path} is not valid JSON: line {getattr(exc, 'lineno', '?')}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"config file {path} must hold a JSON object of settings, not a {type(config).__name__}")
    return config


def _number(config: Mapping[str, Any], name: str, default: float) -> float:
    value = config.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting '{name}' must be a number of seconds") from None


def _rules(config: Mapping[str, Any], default_service: str) -> tuple[Rule, ...]:
    stream_name = config.get("stream_name")
    destinations = config.get("destinations")
    if bool(stream_name) == bool(destinations):
        raise ConfigError("exactly one of the settings 'stream_name' or 'destinations' is required")
    if default_service not in SERVICES:
        raise ConfigError("setting 'service' must be kinesis or firehose")
    raw_rules = [{"event": "*", "stream": stream_name}] if stream_name else list(destinations)
    rules: list[Rule] = []
    for index, raw in enumerate(raw_rules):
        where = "stream_name" if stream_name else f"destinations[{index}]"
        if not isinstance(raw, Mapping):
            raise ConfigError(f"setting '{where}' must be an object with event and stream")
        event = raw.get("event")
        stream = raw.get("stream")
        service = raw.get("service") or default_service
        if not isinstance(event, str) or not event.strip():
            raise ConfigError(f"setting '{where}.event' must be an event name, an event type or '*'")
        if service not in SERVICES:
            raise ConfigError(f"setting '{where}.service' must be kinesis or firehose")
        if not isinstance(stream, str):
            raise ConfigError(f"setting '{where}.stream' must be a stream name")
        problem = stream_name_problem(SERVICES[service], stream)
        if problem:
            label = where if stream_name else f"{where}.stream"
            raise ConfigError(f"setting '{label}': {service} stream name '{stream}' {problem}")
        rules.append(Rule(event.strip(), Destination(service, stream)))
    return tuple(rules)


def _mapping_processes(value: Any) -> int:
    """Unset: one per CPU this process may use, at most 4; none with a single CPU.

    Sending costs the main process about a third of what mapping costs, so the main
    process needs no CPU of its own (measured: 2 mapping processes beat 1 on 2 CPUs).
    """
    if value is not None:
        return int(value)
    cpus = usable_cpus()
    return min(4, cpus) if cpus > 1 else 0


def usable_cpus(cgroup_cpu_max: str = "/sys/fs/cgroup/cpu.max") -> int:
    """CPUs this process may run on, and may use under a container's CPU quota.

    Kubernetes and Docker CPU limits do not show in the affinity mask: a pod limited to one
    CPU on a 16-CPU node would otherwise fork 4 mapping processes to share it.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        with open(cgroup_cpu_max) as limits:
            quota, period = limits.read().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, -(-int(quota) // int(period))))  # a quota of 1.5 CPUs uses 2
    except (OSError, ValueError):
        pass  # no cgroup v2 CPU controller here: the affinity mask is all there is
    return cpus
