"""The Singer target: start-up checks, STATE only after acknowledgement, clean failures.

The SDK reads messages and calls the sinks; this class adds what a delivery pipeline
needs on top: destinations checked before any input is read, STATE written only after
`writer.flush()` returned (every record read before it is acknowledged), a checkpoint
at least every `state_flush_seconds`, and one clear line plus a non-zero exit for every
bad input, bad config or AWS failure.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import multiprocessing
import os
import signal
import sys
import time
import typing as t
from types import FrameType

import click
from botocore.exceptions import BotoCoreError, ClientError
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from singer_sdk import Target
from singer_sdk.exceptions import InvalidRecord, MissingKeyPropertiesError, RecordsWithoutSchemaException
from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities
from singer_sdk.singerlib.exceptions import InvalidInputLine

from target_kinesis import __version__
from target_kinesis.aws import AwsClients
from target_kinesis.batch_files import batch_records
from target_kinesis.deadletter import DeadLetters
from target_kinesis.encoding import encoder_for
from target_kinesis.errors import (
    ConfigError,
    InputError,
    MissingKeyPropertiesInputError,
    OutputClosedError,
    PreflightError,
    RecordBeforeSchemaError,
    TargetKinesisError,
)
from target_kinesis.gc_tuning import tune_for_streaming
from target_kinesis.log_safety import guard_logs
from target_kinesis.parallel import ParallelReader, ReadingStopped
from target_kinesis.producer import Producer
from target_kinesis.reader import LineReader
from target_kinesis.retry import error_code
from target_kinesis.routing import Destination
from target_kinesis.services import SERVICES
from target_kinesis.settings import CONFIG_SCHEMA, Settings, read_config_file
from target_kinesis.sink import EventSink, replication_key_of
from target_kinesis.workers import MappedChunk, MappingPool
from target_kinesis.writer import EventWriter

_BAD_INPUT = (InputError, InvalidInputLine, RecordsWithoutSchemaException, InvalidRecord, MissingKeyPropertiesError)


class _Terminated(BaseException):
    """Raised from the SIGTERM/SIGINT handler so the main loop unwinds to a clean drain."""


class _StopNow(BaseException):
    """The drain after a signal must end now: a second signal, or drain_timeout_seconds passed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def describe_validation_error(error: ValidationError) -> str:
    """A config schema violation as one line that names the setting but never its value."""
    path = ".".join(str(p) for p in error.absolute_path) or "configuration"
    expected = error.validator_value
    reasons = {
        "type": lambda: f"must be of type {expected if isinstance(expected, str) else ' or '.join(expected)}",
        "enum": lambda: "must be one of " + ", ".join(str(v) for v in expected),
        "minimum": lambda: f"must be at least {expected}",
        "maximum": lambda: f"must be at most {expected}",
        "exclusiveMinimum": lambda: f"must be greater than {expected}",
        "required": lambda: error.message,  # names the missing key only
        "additionalProperties": lambda: error.message,  # names the unexpected key only
    }
    reason = reasons.get(str(error.validator), lambda: f"is not valid ({error.validator})")()
    return f"setting '{path}' {reason}"


def unknown_setting(name: str, known: t.Iterable[str]) -> str:
    """A setting nobody reads, named with the closest known one: a mistyped `hash_fields`
    must stop the run, not send emails in clear."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else " (target-kinesis --about lists every setting)"
    return f"setting '{name}' is not a target-kinesis setting{hint}"


class TargetKinesis(Target):
    """Streams Singer records as Segment-spec events to Amazon Kinesis Data Streams and Data Firehose."""

    name = "target-kinesis"
    capabilities: t.ClassVar[list[CapabilitiesEnum]] = [*Target.capabilities, PluginCapabilities.BATCH]
    config_jsonschema = CONFIG_SCHEMA
    default_sink_class = EventSink
    message_reader_class = LineReader

    def __init__(
        self,
        *,
        config: dict | str | list | None = None,
        parse_env_config: bool = False,
        validate_config: bool = True,
        setup_mapper: bool = True,
        message_reader: t.Any = None,
    ) -> None:
        # Read by the signal handler, which the SDK installs while it is being built.
        self._draining = False
        self._signals = 0
        super().__init__(
            config=config,
            parse_env_config=parse_env_config,
            validate_config=validate_config,
            setup_mapper=setup_mapper,
            message_reader=message_reader,
        )
        self.settings = Settings.from_config(self.config)
        guard_logs(self.settings.secret_values())
        self._replication_keys: dict[str, str | None] = {}
        self.current_time_extracted: t.Any = None
        self._last_checkpoint = time.monotonic()
        self._writer: EventWriter | None = None
        self._clients: AwsClients | None = None
        self._dead_letters: DeadLetters | None = None
        self._last_state_written: dict | None = None
        config = self.config
        self._direct = not (
            config.get("stream_maps") or config.get("flattening_enabled") or config.get("add_record_metadata")
        )
        self._direct_count = 0
        self._pool: MappingPool | None = None

    @classmethod
    def cb_config(cls, ctx: click.Context, param: click.Option, value: tuple[str, ...]) -> t.Any:
        """Each --config file checked first: a missing, empty or non-object file is one line,
        not the SDK's traceback."""
        for path in value:
            if path == "ENV":
                continue
            try:
                read_config_file(path)
            except ConfigError as exc:
                cls.logger.error("target-kinesis: %s", exc)
                ctx.exit(1)
        return super().cb_config(ctx, param, value)

    @classmethod
    def get_plugin_version(cls) -> str:
        return __version__

    # -- configuration -------------------------------------------------------------

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """The SDK's check quotes offending values (secrets too); ours names settings only."""
        schema = dict(self.config_jsonschema)
        schema["properties"] = dict(schema["properties"])
        self.append_builtin_config(schema)
        errors = [describe_validation_error(e) for e in Draft202012Validator(schema).iter_errors(dict(self._config))]
        errors += [
            unknown_setting(name, schema["properties"]) for name in self._config if name not in schema["properties"]
        ]
        if errors and raise_errors:
            raise ConfigError("invalid configuration: " + "; ".join(sorted(errors)))
        return errors

    def replication_key(self, stream: str) -> str | None:
        return self._replication_keys.get(stream)

    # -- start-up ------------------------------------------------------------------

    @property
    def writer(self) -> EventWriter:
        if self._writer is None:
            self.start()
        assert self._writer is not None
        return self._writer

    def start(self) -> None:
        """Credentials, preflight describe of every destination, producers. Idempotent."""
        if self._writer is not None:
            return
        s = self.settings
        encoder = encoder_for(s)
        destinations = encoder.destinations
        pool = s.max_concurrent_requests * len(destinations) + 2
        self._clients = AwsClients(s, max_pool_connections=max(10, pool))
        self._dead_letters = DeadLetters(s.dead_letter_path)
        producers: dict[Destination, Producer] = {}
        for destination in destinations:
            service = SERVICES[destination.service]
            client = self._clients.client(destination.service)
            stream_max = self._preflight(destination, client) if s.preflight_check else None
            configured = s.record_bytes(destination.service)
            if stream_max and configured and configured > stream_max:
                self.logger.warning(
                    "max_record_bytes %d is above the %d bytes stream '%s' accepts; using %d",
                    configured,
                    stream_max,
                    destination.stream,
                    stream_max,
                )
            max_record, max_batch = s.size_limits(destination, stream_max)
            producers[destination] = Producer(
                destination,
                service,
                self._clients,
                max_batch_records=s.max_batch_records,
                max_batch_bytes=max_batch,
                max_record_bytes=max_record,
                max_concurrent_requests=s.max_concurrent_requests,
                max_retries=s.max_retries,
                retry_base_delay=s.retry_base_delay,
                retry_max_delay=s.retry_max_delay,
                on_oversized_record=s.on_oversized_record,
                per_key_order=s.ordering == "per_key",
                dead_letters=self._dead_letters,
                refresh_credentials=self._clients.refresh_credentials,
            )
        self._writer = EventWriter(encoder, producers)

    def _preflight(self, destination: Destination, client: t.Any) -> int | None:
        """Describe a destination; a clear error now beats a failed batch an hour in."""
        service = SERVICES[destination.service]
        where = f"{destination.service} stream '{destination.stream}' in region {self.settings.region}"
        try:
            info = service.describe(client, destination.stream)
        except (ClientError, BotoCoreError) as exc:
            code, message, _ = error_code(exc)
            if code == "ResourceNotFoundException":
                raise PreflightError(f"preflight: {where} does not exist (check the name and region)") from None
            if code in ("AccessDeniedException", "AccessDenied"):
                raise PreflightError(
                    f"preflight: not permitted to describe {where} ({destination.service}:"
                    f"{service.describe_api_name} is needed; or set preflight_check to false)"
                ) from None
            raise PreflightError(f"preflight: cannot describe {where}: {code}: {message}") from None
        if not info.active:
            raise PreflightError(f"preflight: {where} is {info.status}, not ACTIVE")
        self.logger.info(
            "Destination %s is %s%s", destination, info.status, " (KMS-encrypted)" if info.encrypted else ""
        )
        return info.max_record_bytes

    # -- messages ------------------------------------------------------------------

    def _process_schema_message(self, message_dict: dict) -> None:
        self._replication_keys[message_dict.get("stream", "")] = replication_key_of(message_dict)
        super()._process_schema_message(message_dict)

    def _process_record_message(self, message_dict: dict) -> None:
        """The SDK's record path, minus what this target never needs.

        With no stream maps, flattening or record metadata configured, the SDK's
        per-record copy, identity transform and bookkeeping cost more than our whole
        mapping; the sink takes the record directly. Anything else (or any message the
        fast path cannot take) goes through the SDK unchanged, errors included.
        """
        self.current_time_extracted = message_dict.get("time_extracted")
        if self._direct:
            sink = self._sinks_active.get(message_dict.get("stream"))  # type: ignore[arg-type]
            record = message_dict.get("record")
            if isinstance(sink, EventSink) and isinstance(record, dict):
                sink.take(record)
                self._direct_count += 1
                if self._direct_count % 1000 == 0:
                    self._handle_max_record_age()
                return
        super()._process_record_message(message_dict)

    def _process_batch_message(self, message_dict: dict) -> None:
        """Each record of the batch files, in order, exactly as if it came on a RECORD line.

        The SDK hands batch files to `Sink.process_batch_files`, which skips stream maps,
        validation and our record path, and reads each file whole into memory.
        """
        stream = message_dict["stream"]
        if stream not in self.mapper.stream_maps:
            raise RecordBeforeSchemaError(f"BATCH for stream '{stream}' arrived before its SCHEMA")
        batch_config = self.config.get("batch_config") or {}
        storage = batch_config.get("storage") if isinstance(batch_config, dict) else None
        for url, line, record in batch_records(stream, message_dict["encoding"], message_dict["manifest"], storage):
            try:
                self._process_record_message({"type": "RECORD", "stream": stream, "record": record})
            except InputError as exc:  # the same error as on a RECORD line, and where in which file
                raise type(exc)(f"{exc} (BATCH file {url} line {line})") from None

    def _process_activate_version_message(self, message_dict: dict) -> None:
        """A stream has no table version to switch: accepted and ignored (the SDK would warn twice)."""
        self.logger.debug("ACTIVATE_VERSION for stream '%s' ignored", message_dict.get("stream"))

    def _process_state_message(self, message_dict: dict) -> None:
        super()._process_state_message(message_dict)
        if time.monotonic() - self._last_checkpoint >= self.settings.state_flush_seconds:
            self.drain_all()

    def _write_state_message(self, state: dict) -> None:
        """Emit STATE only once AWS acknowledged every record read before it."""
        if self._writer is not None:
            self._writer.flush()
        self._last_checkpoint = time.monotonic()
        if state == self._last_state_written:
            return  # the same bookmark again tells Meltano nothing new
        try:
            super()._write_state_message(state)
        except BrokenPipeError:
            # Nothing more can reach the reader; stop writing there, or the interpreter's
            # last flush fails again on the way out.
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the rest of the process
            raise OutputClosedError(
                "stdout was closed by the process reading it (Meltano, or a pipe such as `| head`): "
                "STATE cannot be written, so the run stops; the last STATE it received is safe to resume from"
            ) from None
        self._last_state_written = state

    def process_endofpipe(self) -> None:
        self._draining = True  # a signal from here on bounds this drain, as any other
        super().process_endofpipe()
        self.writer.flush()  # a run without any STATE must still deliver everything

    # -- running and stopping ------------------------------------------------------

    def listen(self, file_input: t.IO[str] | None = None) -> None:  # type: ignore[override]
        """Read all input; on bad input deliver what came before it and emit its state.

        After a signal the drain is bounded (see `_handle_termination`): when it must end
        early, the run stops at once with what was acknowledged, and exits non-zero.
        """
        try:
            self._listen(file_input)
        except _StopNow as stop:
            self._stop_now(stop.reason)

    def _listen(self, file_input: t.IO[str] | None) -> None:
        try:
            self.start()
            tune_for_streaming()
            self._start_mapping_processes()
            super().listen(file_input)
        except (_Terminated, ReadingStopped) as exc:
            if self._writer is None:
                raise  # stopped while starting: nothing was read, nothing to deliver
            self.logger.info("Termination signal: delivering buffered records and emitting state")
            self._draining = True
            if isinstance(exc, ReadingStopped):  # what was read is delivered, as in one process
                self.message_reader.parallel.finish_read()  # type: ignore[attr-defined]
            self.drain_all(is_endofpipe=True)
            self.writer.flush()
        except _BAD_INPUT as exc:
            error = self._input_error(exc)
            self._draining = True
            # Deliver everything read before the bad line; a DeliveryError raised here
            # is then the error to report.
            self.drain_all()
            self.writer.flush()
            raise error from None
        finally:
            if not isinstance(sys.exc_info()[1], _StopNow):
                signal.setitimer(signal.ITIMER_REAL, 0)
                if self._pool is not None:
                    self._pool.close()
                self._shutdown()

    def _stop_now(self, reason: str) -> t.NoReturn:
        """End the process now: calls still on the wire are not waited for (one that never
        answers would hold the exit for read_timeout, again on every retry). Nothing more
        is printed on stdout, so the last STATE there covers only acknowledged records."""
        signal.setitimer(signal.ITIMER_REAL, 0)
        waiting = []
        if self._writer is not None:
            for destination, producer in sorted(self._writer.producers.items()):
                producer.close(wait=False)
                if producer.unacknowledged():
                    waiting.append(f"{producer.unacknowledged()} to {destination}")
            for line in self._writer.summary_lines():
                self.logger.info(line)
        if self._dead_letters is not None:
            self._dead_letters.close()
        self.logger.error(
            "target-kinesis: stopped before every record was delivered (%s): %s not acknowledged; "
            "no STATE covering them was printed, a re-run resumes from the last one",
            reason,
            ", ".join(waiting) or "no record",
        )
        logging.shutdown()
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
        os._exit(1)

    def _start_mapping_processes(self) -> None:
        """Parse, validate and map on other cores when the direct record path applies.

        Stream maps, flattening and record metadata are the SDK's to apply, one record
        at a time in this process; with any of them configured, no mapping processes.
        """
        processes = self.settings.mapping_processes
        if not processes or not self._direct or "fork" not in multiprocessing.get_all_start_methods():
            return
        if sys.platform == "darwin":
            return  # forking a process that loaded system frameworks is not safe there
        try:
            self._pool = MappingPool(processes, self.settings, validate=bool(self.config.get("validate_records", True)))
        except OSError as exc:
            self.logger.warning("Cannot start mapping processes (%s); mapping in the main process", exc)
            return
        self.message_reader.parallel = ParallelReader(
            self._pool,
            take_counts=self._take_mapped_counts,
            hand_over=self.writer.hand_over,
            after_segment=self._handle_max_record_age,
        )
        self.logger.info("Mapping records in %d processes", processes)

    def _take_mapped_counts(self, chunk: MappedChunk) -> None:
        """What the SDK counts per record in this process, counted per chunk."""
        self.writer.count_mapped(chunk.counts)
        for stream, count in chunk.per_stream.items():
            sink = self._sinks_active.get(stream)
            if sink is not None:
                sink.tally_record_read(count)
                sink.record_counter_metric.increment(count)
                sink.tally_record_written(count)

    def _input_error(self, exc: BaseException) -> InputError:
        """The same problem as one line with the input line number, keeping the SDK's type."""
        message = str(exc.args[0]) if exc.args else type(exc).__name__
        message = message.splitlines()[0] if message else type(exc).__name__
        if isinstance(exc, RecordsWithoutSchemaException):
            message = message.split(" Check that")[0]
        line = getattr(self.message_reader, "line_number", None)
        if line and not message.startswith("input line"):
            message = f"input line {line}: {message}"
        if isinstance(exc, RecordsWithoutSchemaException):
            return RecordBeforeSchemaError(message)
        if isinstance(exc, MissingKeyPropertiesError):
            return MissingKeyPropertiesInputError(message)
        return InputError(message)

    def _shutdown(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        for line in self._writer.summary_lines():
            self.logger.info(line)
        if self._dead_letters is not None:
            self._dead_letters.close()

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM / SIGINT: deliver what was read, within drain_timeout_seconds.

        The first signal starts the drain (or, if one is already under way at the end of
        input or after bad input, bounds it); a second one, or the timer, stops at once.
        """
        if not hasattr(self, "settings"):
            raise _Terminated(signum)  # still being built: nothing started, nothing to deliver
        if self._signals:
            raise _StopNow(f"signal {signum} received again while delivering")
        self._signals += 1
        timeout = self.settings.drain_timeout_seconds
        signal.signal(signal.SIGALRM, self._drain_timed_out)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        self.logger.info(
            "Signal %d: delivering what was read, for at most %g s (drain_timeout_seconds); "
            "a second signal stops at once",
            signum,
            timeout,
        )
        if self._draining:
            return  # already delivering: the drain goes on, bounded now
        parallel = getattr(self.message_reader, "parallel", None)
        if parallel is not None and parallel.running:
            # Raising here could cut a segment in two; the reader stops at its next whole point.
            parallel.stop_requested = True
            return
        raise _Terminated(signum)

    def _drain_timed_out(self, signum: int, frame: FrameType | None) -> None:
        raise _StopNow(f"drain_timeout_seconds ({self.settings.drain_timeout_seconds:g} s) passed")

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: t.Any = None,
        file_input: t.IO[str] | None = None,
    ) -> None:
        """Run the target; every known failure ends as one error line and exit code 1."""
        try:
            super().invoke(about=about, about_format=about_format, config=config, file_input=file_input)
        except TargetKinesisError as exc:
            cls.logger.error("target-kinesis: %s", exc)
            sys.exit(1)
        except _Terminated:
            cls.logger.info("Terminated before any input was read")
            sys.exit(0)


__all__ = ["TargetKinesis"]
