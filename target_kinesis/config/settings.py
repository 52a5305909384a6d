"""The checked, typed form of the configuration: built once at start-up, read everywhere.

`Settings.from_config` checks what the schema can say (types, bounds, allowed values) and
the rules it cannot (exactly one of stream_name/destinations, stream-name patterns per
service, limits that depend on the service), and turns every violation into one line that
names the setting and never repeats a value. Defaults come from the schema (`schema.py`).
Settings the target does not know are left to its caller to refuse (`unknown_setting`):
the Singer SDK adds settings of its own, which the operator tools do not know.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from target_kinesis.aws.clients import AwsAccess, profile_region
from target_kinesis.aws.s3 import S3Location, S3UrlError, is_url, parse_s3_url
from target_kinesis.aws.services import SERVICES, stream_name_problem
from target_kinesis.config.destinations import Destination, Rule
from target_kinesis.config.events import EventSpec, privacy_path_problem
from target_kinesis.config.schema import CONFIG_SCHEMA, SECRET_SETTINGS, with_defaults
from target_kinesis.errors import ConfigError

#: What botocore accepts as a region: one DNS label (it becomes part of the endpoint's host name).
_REGION = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")
#: Settings given in seconds (numbers, or numeric text from Meltano's environment variables).
SECONDS_SETTINGS = (
    "retry_base_delay",
    "retry_max_delay",
    "state_flush_seconds",
    "drain_timeout_seconds",
    "stall_timeout_seconds",
)
TIMEOUT_SETTINGS = ("connect_timeout", "read_timeout")


@dataclass(frozen=True)
class Settings:
    """Every setting, checked and with its default filled in."""

    region: str
    #: Where `region` came from, for the start-up line (the setting, an environment variable,
    #: a profile, or the default).
    region_source: str
    endpoint_url: str | None
    rules: tuple[Rule, ...]
    events: Mapping[str, EventSpec]
    aws_access_key_id: str | None
    aws_secret_access_key: str | None = field(repr=False)
    aws_session_token: str | None = field(repr=False)
    aws_profile: str | None
    role_arn: str | None
    external_id: str | None = field(repr=False)
    role_session_name: str
    role_session_duration_seconds: int
    exclude_fields: tuple[str, ...]
    hash_fields: tuple[str, ...]
    send_anonymous_users: bool
    partition_key: str
    append_newline: bool | None
    max_batch_records: int
    max_batch_bytes: int | None
    max_record_bytes: int | None
    max_concurrent_requests: int
    max_retries: int
    retry_base_delay: float
    retry_max_delay: float
    on_oversized_record: str
    dead_letter_path: str | None
    preflight_check: bool
    state_flush_seconds: float
    drain_timeout_seconds: float
    rate_limit_percent: int
    max_records_per_second: int | None
    max_bytes_per_second: int | None
    stall_timeout_seconds: float
    ordering: str
    #: The top-level `aggregation` (a rule may set its own: `aggregation_for`).
    aggregation: str
    aggregation_max_bytes: int | None
    aggregation_max_records: int | None
    mapping_processes: int
    connect_timeout: float
    read_timeout: float

    def secret_values(self) -> list[str | None]:
        """The values of the secret settings, to be masked wherever they could be logged."""
        return [getattr(self, name) for name in sorted(SECRET_SETTINGS)]

    def aws_access(self) -> AwsAccess:
        """The credential and connection settings, for the AWS clients."""
        return AwsAccess(
            region=self.region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
            aws_session_token=self.aws_session_token,
            aws_profile=self.aws_profile,
            role_arn=self.role_arn,
            external_id=self.external_id,
            role_session_name=self.role_session_name,
            role_session_duration_seconds=self.role_session_duration_seconds,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
        )

    @property
    def dead_letter_location(self) -> S3Location | None:
        """Where dead letters go when `dead_letter_path` is an ``s3://`` URL; None for a file."""
        return dead_letter_location(self.dead_letter_path)

    @property
    def destinations(self) -> list[Destination]:
        return sorted({rule.destination for rule in self.rules})

    def batch_bytes(self, service: str) -> int:
        """Bytes per call for a service: the setting, never above the service's limit."""
        limits = SERVICES[service].limits
        if self.max_batch_bytes is None:
            return limits.default_batch_bytes
        return min(self.max_batch_bytes, limits.max_batch_bytes)

    def record_bytes(self, service: str) -> int | None:
        """The configured record maximum for a service, capped at the service's limit."""
        if self.max_record_bytes is None:
            return None
        return min(self.max_record_bytes, SERVICES[service].limits.max_record_bytes)

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

    def aggregation_for(self, destination: Destination) -> str:
        """How events are packed into records for one destination: none, kpl or lines.

        The rules naming the destination say it (they agree: `_check_aggregation`); else the
        top-level setting, where it is the destination's service's format (kpl for Kinesis,
        lines for Firehose): one setting serves a run that writes to both services.
        """
        for rule in self.rules:
            if rule.destination == destination and rule.aggregation is not None:
                return rule.aggregation
        if self.aggregation == SERVICES[destination.service].aggregation:
            return self.aggregation
        return "none"

    def event_spec(self, stream: str) -> EventSpec:
        """How records of a Singer stream become events (a track event, unless configured)."""
        return self.events.get(stream) or EventSpec()

    def newline(self, service: str) -> bool:
        if self.append_newline is None:
            return SERVICES[service].default_append_newline
        return self.append_newline

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """Check `config` and fill in its defaults; ConfigError names the first problems."""
        errors = config_errors(config, CONFIG_SCHEMA)
        if errors:
            raise ConfigError("invalid configuration: " + "; ".join(errors))
        c = with_defaults(config)
        rules = _rules(c)
        events = {stream: EventSpec.from_setting(stream, raw) for stream, raw in (c.get("events") or {}).items()}
        if c["on_oversized_record"] == "dead_letter" and not c.get("dead_letter_path"):
            raise ConfigError("setting 'on_oversized_record' is dead_letter but 'dead_letter_path' is not set")
        dead_letter_location(c.get("dead_letter_path"))
        if c.get("aws_secret_access_key") and not c.get("aws_access_key_id"):
            raise ConfigError("setting 'aws_secret_access_key' is set without 'aws_access_key_id'")
        if c.get("aws_access_key_id") and not c.get("aws_secret_access_key"):
            raise ConfigError("setting 'aws_access_key_id' is set without 'aws_secret_access_key'")
        if c.get("external_id") and not c.get("role_arn"):
            raise ConfigError("setting 'external_id' is set without 'role_arn'")
        if not c["partition_key"].strip("."):
            raise ConfigError("setting 'partition_key' must name a field path, messageId or random")
        # A passthrough record keeps its own top-level fields, so any first part can match there.
        if not any(spec.type == "passthrough" for spec in events.values()):
            for name in ("exclude_fields", "hash_fields"):
                for path in c.get(name) or ():
                    problem = privacy_path_problem(name, path)
                    if problem:
                        raise ConfigError(problem)
        seconds = {name: _seconds(c, name) for name in (*SECONDS_SETTINGS, *TIMEOUT_SETTINGS)}
        for name in (*TIMEOUT_SETTINGS, "drain_timeout_seconds", "stall_timeout_seconds"):
            if seconds[name] <= 0:
                raise ConfigError(f"setting '{name}' must be greater than 0")
        region, region_source = _region(c)
        settings = cls(
            region=region,
            region_source=region_source,
            endpoint_url=c.get("endpoint_url") or None,
            rules=rules,
            events=events,
            aws_access_key_id=c.get("aws_access_key_id") or None,
            aws_secret_access_key=c.get("aws_secret_access_key") or None,
            aws_session_token=c.get("aws_session_token") or None,
            aws_profile=c.get("aws_profile") or None,
            role_arn=c.get("role_arn") or None,
            external_id=c.get("external_id") or None,
            role_session_name=c["role_session_name"],
            role_session_duration_seconds=c["role_session_duration_seconds"],
            exclude_fields=tuple(c.get("exclude_fields") or ()),
            hash_fields=tuple(c.get("hash_fields") or ()),
            send_anonymous_users=c["send_anonymous_users"],
            partition_key=c["partition_key"],
            append_newline=c.get("append_newline"),
            max_batch_records=c["max_batch_records"],
            max_batch_bytes=c.get("max_batch_bytes"),
            max_record_bytes=c.get("max_record_bytes"),
            max_concurrent_requests=c["max_concurrent_requests"],
            max_retries=c["max_retries"],
            retry_base_delay=seconds["retry_base_delay"],
            retry_max_delay=seconds["retry_max_delay"],
            on_oversized_record=c["on_oversized_record"],
            dead_letter_path=c.get("dead_letter_path") or None,
            preflight_check=c["preflight_check"],
            state_flush_seconds=seconds["state_flush_seconds"],
            drain_timeout_seconds=seconds["drain_timeout_seconds"],
            rate_limit_percent=c["rate_limit_percent"],
            max_records_per_second=c.get("max_records_per_second"),
            max_bytes_per_second=c.get("max_bytes_per_second"),
            stall_timeout_seconds=seconds["stall_timeout_seconds"],
            ordering=c["ordering"],
            aggregation=c["aggregation"],
            aggregation_max_bytes=c.get("aggregation_max_bytes"),
            aggregation_max_records=c.get("aggregation_max_records"),
            mapping_processes=mapping_processes_for(c.get("mapping_processes")),
            connect_timeout=seconds["connect_timeout"],
            read_timeout=seconds["read_timeout"],
        )
        _check_service_limits(settings)
        _check_aggregation(settings)
        return settings


def dead_letter_location(path: str | None) -> S3Location | None:
    """The S3 location `dead_letter_path` names; None for a file path (or no path).

    ConfigError, naming the setting, for a URL that is not ``s3://bucket/prefix/`` (no bucket,
    another scheme): checked at start-up, so a mistyped URL stops the run before anything is
    read, not when the first dead letter is written.
    """
    if not path or not is_url(path):
        return None
    try:
        return parse_s3_url(path)
    except S3UrlError as exc:
        raise ConfigError(f"setting 'dead_letter_path' {exc}") from None


def config_errors(config: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """Every schema violation of `config`, one line each, naming settings and never values."""
    return sorted(describe_validation_error(e) for e in Draft202012Validator(schema).iter_errors(dict(config)))


def describe_validation_error(error: ValidationError) -> str:
    """A config schema violation as one line that names the setting but never its value."""
    path = _setting_path(error.absolute_path)
    expected = error.validator_value
    if error.validator == "required" and isinstance(error.instance, Mapping):
        missing = [key for key in expected if key not in error.instance]
        return "; ".join(f"setting '{_join(path, key)}' is required" for key in missing)
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        known = error.schema.get("properties", {}) if isinstance(error.schema, Mapping) else {}
        unexpected = sorted(str(key) for key in error.instance if key not in known)
        return "; ".join(f"setting '{_join(path, key)}' is not a known key" for key in unexpected)
    reasons = {
        "type": lambda: f"must be of type {expected if isinstance(expected, str) else ' or '.join(expected)}",
        "enum": lambda: "must be one of " + ", ".join(str(v) for v in expected),
        "minimum": lambda: f"must be at least {expected}",
        "maximum": lambda: f"must be at most {expected}",
        "exclusiveMinimum": lambda: f"must be greater than {expected}",
    }
    reason = reasons.get(str(error.validator), lambda: f"is not valid ({error.validator})")()
    return f"setting '{path or 'configuration'}' {reason}"


def _setting_path(parts: Iterable[Any]) -> str:
    """`destinations[0].event` for the path jsonschema gives as deque(['destinations', 0, 'event'])."""
    text = ""
    for part in parts:
        text = f"{text}[{part}]" if isinstance(part, int) else _join(text, str(part))
    return text


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def unknown_setting(name: str, known: Iterable[str]) -> str:
    """A setting nobody reads, named with the closest known one: a mistyped `hash_fields`
    must stop the run, not send emails in clear."""
    import difflib  # here: only this error line needs it (start-up time)

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else " (target-kinesis --about lists every setting)"
    return f"setting '{name}' is not a target-kinesis setting{hint}"


def _region(config: Mapping[str, Any]) -> tuple[str, str]:
    """The region, and where it came from, in the AWS CLI's order: the setting, AWS_REGION,
    AWS_DEFAULT_REGION, the profile's region (aws_profile, else AWS_PROFILE, else the default
    profile, in the shared config file), else us-east-1."""
    given = (
        ("setting 'region'", config.get("region")),
        ("the AWS_REGION environment variable", os.environ.get("AWS_REGION")),
        ("the AWS_DEFAULT_REGION environment variable", os.environ.get("AWS_DEFAULT_REGION")),
    )
    source, region = next(((where, str(value)) for where, value in given if value), ("", None))
    if region is None:
        region, profile = profile_region(config.get("aws_profile") or None)
        source = f"profile '{profile}' of the AWS config file"
        if region is None:
            region, source = "us-east-1", "the default: no region setting, AWS_REGION or profile region"
    if not _REGION.fullmatch(region):
        raise ConfigError(f"{source}: '{region[:64]}' is not a region name (such as eu-west-1)")
    return region, source


def _seconds(config: Mapping[str, Any], name: str) -> float:
    """A seconds setting as a number; the schema let numeric text through, checked here."""
    try:
        return float(config[name])
    except (TypeError, ValueError):
        raise ConfigError(f"setting '{name}' must be a number of seconds") from None


def _rules(config: Mapping[str, Any]) -> tuple[Rule, ...]:
    stream_name = config.get("stream_name")
    destinations = config.get("destinations")
    if bool(stream_name) == bool(destinations):
        raise ConfigError("exactly one of the settings 'stream_name' or 'destinations' is required")
    default_service = config["service"]
    raw_rules = [{"event": "*", "stream": stream_name}] if stream_name else list(destinations or ())
    rules: list[Rule] = []
    for index, raw in enumerate(raw_rules):
        where = "stream_name" if stream_name else f"destinations[{index}]"
        event = raw["event"]
        stream = raw["stream"]
        service = raw.get("service") or default_service
        if not event.strip():
            raise ConfigError(f"setting '{where}.event' must be an event name, an event type or '*'")
        problem = stream_name_problem(SERVICES[service], stream)
        if problem:
            label = where if stream_name else f"{where}.stream"
            raise ConfigError(f"setting '{label}': {service} stream name '{stream}' {problem}")
        aggregation = raw.get("aggregation")
        if aggregation not in (None, "none") and aggregation != SERVICES[service].aggregation:
            raise ConfigError(
                f"setting '{where}.aggregation': {aggregation} is not for {service} streams "
                f"(kinesis: kpl; firehose: lines)"
            )
        rules.append(Rule(event.strip(), Destination(service, stream), aggregation))
    return tuple(rules)


def _check_service_limits(settings: Settings) -> None:
    """A value above every used service's limit is a mistake; one between two limits (5 MiB
    with Kinesis and Firehose destinations) is capped per service."""
    used = [SERVICES[service] for service in {d.service for d in settings.destinations}]
    for name, value, ceiling in (
        ("max_batch_bytes", settings.max_batch_bytes, max(s.limits.max_batch_bytes for s in used)),
        ("max_record_bytes", settings.max_record_bytes, max(s.limits.max_record_bytes for s in used)),
    ):
        if value is not None and value > ceiling:
            names = " and ".join(sorted(s.name for s in used))
            raise ConfigError(f"setting '{name}' is above the {names} limit of {ceiling} bytes")


def _check_aggregation(settings: Settings) -> None:
    """Rules of one destination agree on its aggregation; the top-level one applies somewhere."""
    chosen: dict[Destination, str] = {}
    for index, rule in enumerate(settings.rules):
        if rule.aggregation is None:
            continue
        earlier = chosen.setdefault(rule.destination, rule.aggregation)
        if earlier != rule.aggregation:
            raise ConfigError(
                f"setting 'destinations[{index}].aggregation': {rule.destination} is given both "
                f"{earlier} and {rule.aggregation}; a stream is written one way"
            )
    top = settings.aggregation
    if top != "none" and all(SERVICES[d.service].aggregation != top for d in settings.destinations):
        services = " and ".join(sorted({d.service for d in settings.destinations}))
        raise ConfigError(
            f"setting 'aggregation': {top} is for {'kinesis' if top == 'kpl' else 'firehose'} streams, and this "
            f"configuration writes to {services} only (kinesis: kpl; firehose: lines)"
        )


def mapping_processes_for(value: int | None) -> int:
    """The `mapping_processes` setting's value. Unset: one per CPU this process may use, at most 4; none with a single CPU.

    Sending costs the main process about a third of what mapping costs, so the main
    process needs no CPU of its own (measured: 2 mapping processes beat 1 on 2 CPUs).
    """
    if value is not None:
        return value
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
