"""The Singer target: start-up checks, STATE only after acknowledgement, clean failures.

The SDK reads messages and keeps the sinks; this class adds what a delivery pipeline needs
on top: destinations checked before any input is read, STATE written only after the
writer's flush returned (every record read before it is acknowledged), a checkpoint at
least every `state_flush_seconds`, a bounded stop, and one clear line plus a non-zero exit
for every bad input, bad config or AWS failure.

Every override of a private or final SDK method is in this module, each saying why:
`listen` (final), `_validate_config`, `_process_schema_message`, `_process_record_message`,
`_process_batch_message`, `_process_activate_version_message`, `_process_state_message`,
`_write_state_message`, `_handle_termination`; and one private method is called,
`Sink._add_sdc_metadata_to_record`, only with `add_record_metadata`.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import multiprocessing
import os
import signal
import sys
import time
import typing as t
from functools import partial
from types import FrameType

import click
from singer_sdk import Target
from singer_sdk.exceptions import InvalidRecord, MissingKeyPropertiesError, RecordsWithoutSchemaException
from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities
from singer_sdk.singerlib.exceptions import InvalidInputLine

from target_kinesis import __version__
from target_kinesis.aws.clients import AwsClients
from target_kinesis.aws.errors import AwsCallFailed, explain
from target_kinesis.aws.kinesis import list_shards
from target_kinesis.aws.s3 import put_object
from target_kinesis.aws.services import SERVICES, describe_stream
from target_kinesis.config.destinations import Destination
from target_kinesis.config.files import read_config_file
from target_kinesis.config.schema import CONFIG_SCHEMA
from target_kinesis.config.settings import Settings, config_errors, unknown_setting
from target_kinesis.delivery.audit import RoutingAudit
from target_kinesis.delivery.dead_letters import DeadLetterError, DeadLetters, PutRetries
from target_kinesis.delivery.encoding import encoder_for
from target_kinesis.delivery.flow import flow_for
from target_kinesis.delivery.producer import Producer, ProducerLimits
from target_kinesis.delivery.shards import ShardMap, ShardMapReader
from target_kinesis.delivery.writer import EventWriter
from target_kinesis.errors import (
    ConfigError,
    InputError,
    NothingRoutedError,
    OutputClosedError,
    PreflightError,
    TargetKinesisError,
)
from target_kinesis.events.event import Event
from target_kinesis.gc_tuning import tune_for_streaming
from target_kinesis.log_safety import guard_logs
from target_kinesis.parallel.pool import MappingPool
from target_kinesis.parallel.segments import ParallelReader, ReadingStopped
from target_kinesis.parallel.worker import MappedChunk
from target_kinesis.records.codec import keep_long_integers, non_finite_paths
from target_kinesis.records.pipeline import StreamPipeline, replication_key_of
from target_kinesis.singer.batch_files import batch_records
from target_kinesis.singer.errors import RecordBeforeSchemaError, input_error
from target_kinesis.singer.metrics import DeliveryMetrics
from target_kinesis.singer.reader import MessageReader
from target_kinesis.singer.sink import EventSink

_BAD_INPUT = (InputError, InvalidInputLine, RecordsWithoutSchemaException, InvalidRecord, MissingKeyPropertiesError)
#: A record's max-age check (the SDK's five-minute drain) every this many records, not each one.
_AGE_CHECK_RECORDS = 1000
#: Fields holding NaN or an infinity warned about by name (each stream and field once); the
#: rest are counted only.
_NON_FINITE_WARNINGS = 10


class _Terminated(BaseException):
    """Raised from the SIGTERM/SIGINT handler so the main loop unwinds to a clean drain."""


class _StopNow(BaseException):
    """The drain after a signal must end now: a second signal, or drain_timeout_seconds passed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TargetKinesis(Target):
    """Streams Singer records as Segment-spec events to Amazon Kinesis Data Streams and Data Firehose."""

    name = "target-kinesis"
    capabilities: t.ClassVar[list[CapabilitiesEnum]] = [*Target.capabilities, PluginCapabilities.BATCH]
    config_jsonschema = CONFIG_SCHEMA
    default_sink_class = EventSink

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
            message_reader=message_reader or MessageReader(start=self.start, non_finite=self._non_finite_seen),
        )
        self.settings = Settings.from_config(self.config)
        guard_logs(self.settings.secret_values())
        keep_long_integers()
        self._audit = RoutingAudit(self.settings.events, (rule.event for rule in self.settings.rules))
        #: (stream, field) of the NaN and infinities warned about by name.
        self._non_finite_warned: set[tuple[str, str]] = set()
        config_now = self.config
        #: No stream maps, flattening or record metadata: records need nothing of the SDK's.
        self._plain_records = not (
            config_now.get("stream_maps")
            or config_now.get("flattening_enabled")
            or config_now.get("add_record_metadata")
        )
        self._validate_records = bool(config_now.get("validate_records", True))
        self._sink_class = EventSink.serving(self)
        self._replication_keys: dict[str, str | None] = {}
        self._metrics: DeliveryMetrics | None = None
        #: Records a mapping process mapped for a stream whose sink is not made yet: its SCHEMA
        #: is in the same segment, and is processed here after the segment's counts are taken.
        self._uncounted: dict[str, int] = {}
        self._last_checkpoint = time.monotonic()
        self._last_state_written: dict | None = None
        self._records_since_age_check = 0
        self._writer: EventWriter | None = None
        self._dead_letters: DeadLetters | None = None
        self._pool: MappingPool | None = None

    @classmethod
    def get_plugin_version(cls) -> str:
        return __version__

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

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Private SDK hook, overridden because the SDK's check quotes offending values (secrets
        too) and lets unknown settings pass; ours names settings only and refuses typos."""
        schema = dict(self.config_jsonschema)
        schema["properties"] = dict(schema["properties"])
        self.append_builtin_config(schema)
        errors = config_errors(self._config, schema)
        errors += [
            unknown_setting(name, schema["properties"]) for name in self._config if name not in schema["properties"]
        ]
        if errors and raise_errors:
            raise ConfigError("invalid configuration: " + "; ".join(sorted(errors)))
        return errors

    def get_sink_class(self, stream_name: str) -> type[EventSink]:
        """The sink class bound to this run (`EventSink.serving`)."""
        return self._sink_class

    # -- what the sinks need (singer.sink.SinkHost) ------------------------------------------

    def pipeline(
        self,
        stream: str,
        schema: dict[str, t.Any],
        key_properties: t.Sequence[str] | None,
        *,
        keep_sdc_metadata: bool,
    ) -> StreamPipeline:
        return StreamPipeline(
            stream,
            schema,
            self.settings.event_spec(stream),
            key_properties=key_properties,
            replication_key=self._replication_keys.get(stream),
            validate=self._validate_records,
            keep_sdc_metadata=keep_sdc_metadata,
        )

    def deliver(self, event: Event) -> bool:
        return self._started_writer().write(event)

    def tally(self, stream: str) -> list[int]:
        return self._audit.tally(stream)

    # -- start-up -------------------------------------------------------------------------------

    def start(self, parallel_possible: bool = False) -> ParallelReader | None:
        """Credentials, the preflight describe of every destination, producers; then, when the
        input can be read by them, the mapping processes, whose reader is returned.

        Called by the message reader when reading begins (the CLI's and the SDK test runner's
        path alike); a second call starts nothing new.
        """
        if self._writer is None:
            self._writer = self._start_writer()
            self._metrics = DeliveryMetrics(self._writer.producers)
            tune_for_streaming()
        if parallel_possible and self._pool is None:
            self._pool = self._start_mapping_processes()
        if self._pool is None:
            return None
        return ParallelReader(
            self._pool,
            take_counts=self._take_mapped_counts,
            hand_over=self._writer.hand_over,
            after_segment=self._handle_max_record_age,
        )

    def _start_writer(self) -> EventWriter:
        s = self.settings
        self.logger.info("AWS region %s (from %s)", s.region, s.region_source)
        shard_maps: dict[int, ShardMap] = {}  # filled below; records' shards are predicted with them
        encoder = encoder_for(s)
        connections = s.max_concurrent_requests * len(encoder.destinations) + 2
        clients = AwsClients(s.aws_access(), max_pool_connections=max(10, connections))
        self._dead_letters = self._open_dead_letters(clients)
        producers: dict[Destination, Producer] = {}
        for index, destination in enumerate(encoder.destinations):
            client = clients.client(destination.service)
            stream_max = self._preflight(destination, client) if s.preflight_check else None
            maps = ShardMapReader(partial(list_shards, client, destination.stream), index, shard_maps)
            if destination.service == "kinesis" and maps.reread() is None:
                self.logger.warning(
                    "Cannot read the shard map of %s (%s; kinesis:ListShards is needed): it is paced by the "
                    "stream's refusals alone",
                    destination,
                    maps.failure,
                )
            configured = s.record_bytes(destination.service)
            if stream_max and configured and configured > stream_max:
                self.logger.warning(
                    "max_record_bytes %d is above the %d bytes stream '%s' accepts; using %d",
                    configured,
                    stream_max,
                    destination.stream,
                    stream_max,
                )
            shard_map = shard_maps.get(index)
            producers[destination] = Producer(
                destination,
                SERVICES[destination.service],
                clients,
                ProducerLimits.for_destination(s, destination, stream_max),
                flow=flow_for(s, shard_map),
                dead_letters=self._dead_letters,
                refresh_credentials=clients.refresh_credentials,
                shard_maps=maps if destination.service == "kinesis" else None,
            )
        return EventWriter(encoder, producers, shard_maps=shard_maps)

    def _open_dead_letters(self, clients: AwsClients) -> DeadLetters:
        """The dead-letter file, or S3 objects written with the producers' own clients (their
        credentials, role and endpoint) and retried by the run's own retry settings."""
        s = self.settings
        put = partial(put_object, clients.client("s3")) if s.dead_letter_location is not None else None
        return DeadLetters(
            s.dead_letter_path,
            put_object=put,
            retries=PutRetries(s.max_retries, s.retry_base_delay, s.retry_max_delay),
            refresh_credentials=clients.refresh_credentials,
        )

    def _preflight(self, destination: Destination, client: t.Any) -> int | None:
        """Describe a destination; a clear error now beats a failed batch an hour in."""
        service = SERVICES[destination.service]
        where = f"{destination.service} stream '{destination.stream}' in region {self.settings.region}"
        try:
            info = describe_stream(client, destination.service, destination.stream)
        except AwsCallFailed as exc:
            line = explain(
                exc.error,
                where=where,
                verb="describe",
                needed=f"{destination.service}:{service.describe_api_name} is needed",
                alternative="set preflight_check to false",
            )
            raise PreflightError(f"preflight: {line}") from None
        if not info.active:
            raise PreflightError(f"preflight: {where} is {info.status}, not ACTIVE")
        self.logger.info(
            "Destination %s is %s%s", destination, info.status, " (KMS-encrypted)" if info.encrypted else ""
        )
        return info.max_record_bytes

    def _start_mapping_processes(self) -> MappingPool | None:
        """Parse, validate and map on other cores, when records need nothing of the SDK.

        Stream maps, flattening and record metadata are the SDK's to apply, one record at a
        time in this process; with any of them configured, no mapping processes.
        """
        processes = self.settings.mapping_processes
        if not processes or not self._plain_records or "fork" not in multiprocessing.get_all_start_methods():
            return None
        if sys.platform == "darwin":
            return None  # forking a process that loaded system frameworks is not safe there
        try:
            pool = MappingPool(
                processes,
                self.settings,
                validate=self._validate_records,
                shard_maps=dict(self._started_writer().shard_maps),
            )
        except OSError as exc:
            self.logger.warning("Cannot start mapping processes (%s); mapping in the main process", exc)
            return None
        self.logger.info("Mapping records in %d processes", processes)
        return pool

    def _started_writer(self) -> EventWriter:
        if self._writer is None:
            raise RuntimeError("target-kinesis was not started: the message reader starts it before the first line")
        return self._writer

    # -- messages (the SDK's message hooks) -----------------------------------------------------

    def _process_schema_message(self, message_dict: dict) -> None:
        """Private SDK hook: the bookmark field (the default `timestamp`) is in the SCHEMA
        message only, and the SDK does not hand it to sinks."""
        stream = message_dict["stream"]
        self._replication_keys[stream] = replication_key_of(message_dict)
        super()._process_schema_message(message_dict)
        self._audit.declare(stream)
        uncounted = self._uncounted.pop(stream, 0)
        sink = self._sinks_active.get(stream)
        if uncounted and isinstance(sink, EventSink):
            sink.count_mapped(uncounted)

    def _process_record_message(self, message_dict: dict) -> None:
        """Private SDK hook: every RECORD takes this one way to its sink's pipeline.

        The SDK's own path copies each record, applies an identity transform and runs
        bookkeeping that cost more than our whole mapping, and it validates in its own way;
        here the SDK's stream maps (and flattening, and record metadata) are applied only
        when configured, and every record then meets the same pipeline as in the mapping
        processes.
        """
        stream = message_dict["stream"]
        stream_maps = self.mapper.stream_maps.get(stream)
        if stream_maps is None:
            raise RecordBeforeSchemaError(f"RECORD for stream '{stream}' arrived before its SCHEMA")
        record = message_dict["record"]
        time_extracted = message_dict.get("time_extracted")
        if self._plain_records:  # one identity map: the sink has the stream's own name
            sink = self._sinks_active[stream]
            t.cast(EventSink, sink).take(record, time_extracted, self._reader().current_line)
        else:
            for stream_map in stream_maps:
                transformed = stream_map.transform(copy.copy(record))
                if transformed is None:
                    continue  # filtered out by the stream map
                sink = self.get_sink(stream_map.stream_alias, record=transformed)
                if sink.include_sdc_metadata_properties:
                    sink._add_sdc_metadata_to_record(transformed, message_dict, {})
                t.cast(EventSink, sink).take(transformed, time_extracted)
        self._records_since_age_check += 1
        if self._records_since_age_check >= _AGE_CHECK_RECORDS:
            self._records_since_age_check = 0
            self._handle_max_record_age()

    def _process_batch_message(self, message_dict: dict) -> None:
        """Private SDK hook: each record of the batch files, in order, exactly as if it came
        on a RECORD line. The SDK hands batch files to `Sink.process_batch_files`, which skips
        stream maps, validation and our record path, and reads each file whole into memory.
        """
        stream = message_dict["stream"]
        if stream not in self.mapper.stream_maps:
            raise RecordBeforeSchemaError(f"BATCH for stream '{stream}' arrived before its SCHEMA")
        batch_config = self.config.get("batch_config") or {}
        storage = batch_config.get("storage") if isinstance(batch_config, dict) else None
        for url, line, record, non_finite in batch_records(
            stream, message_dict["encoding"], message_dict["manifest"], storage
        ):
            if non_finite:
                self._non_finite_found(f"BATCH file {url} line {line}", stream, record)
            try:
                self._process_record_message({"type": "RECORD", "stream": stream, "record": record})
            except InputError as exc:  # the same error as on a RECORD line, and where in which file
                raise input_error(exc, f"{exc} (BATCH file {url} line {line})") from None

    def _process_activate_version_message(self, message_dict: dict) -> None:
        """Private SDK hook: a stream has no table version to switch; accepted and ignored
        (the SDK would warn twice per message)."""
        self.logger.debug("ACTIVATE_VERSION for stream '%s' ignored", message_dict.get("stream"))

    def _process_state_message(self, message_dict: dict) -> None:
        """Private SDK hook: a STATE alone never drains in the SDK; here it checkpoints when
        `state_flush_seconds` passed, so a long run resumes with little rework."""
        super()._process_state_message(message_dict)
        if time.monotonic() - self._last_checkpoint >= self.settings.state_flush_seconds:
            self.drain_all()

    def _write_state_message(self, state: dict) -> None:
        """Private SDK hook: STATE only once AWS acknowledged every record read before it, and
        never while every record read was routed nowhere by what looks like a naming mistake
        (`RoutingAudit.mistaken`): a bookmark past them would make the fixed re-run skip them."""
        if self._writer is not None:
            self._writer.flush()
        if self._dead_letters is not None:
            self._dead_letters.flush()  # a STATE never covers a dead letter held only in memory
        if self._metrics is not None:
            self._metrics.maybe_log()
        self._last_checkpoint = time.monotonic()
        if self._audit.mistaken():
            return
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
        if self._pool is not None:  # all input is mapped: the processes have nothing left to do
            self._pool.close()
            self._pool = None
        super().process_endofpipe()
        if self._writer is not None:
            self._writer.flush()  # a run without any STATE must still deliver everything
        self._raise_if_nothing_routed()

    def _raise_if_nothing_routed(self) -> None:
        """A run that routed nothing by a naming mistake ends as an error (its STATE was held)."""
        failure = self._audit.failure_line()
        if failure is not None:
            raise NothingRoutedError(failure)

    def _take_mapped_counts(self, chunk: MappedChunk) -> None:
        """What the SDK counts per record in this process, counted per chunk."""
        self._started_writer().count_mapped(chunk.counts)
        for stream, count in chunk.per_stream.items():
            self._audit.count(stream, count, chunk.unmapped.get(stream, 0))
            sink = self._sinks_active.get(stream)
            if isinstance(sink, EventSink):
                sink.count_mapped(count)
            else:  # counted when its SCHEMA (in this chunk's segment, handled next) makes the sink
                self._uncounted[stream] = self._uncounted.get(stream, 0) + count

    def _non_finite_seen(self, line: int, stream: str, record: dict[str, t.Any]) -> None:
        self._non_finite_found(f"input line {line}", stream, record)

    def _non_finite_found(self, where: str, stream: str, record: dict[str, t.Any]) -> None:
        """NaN and infinities in a record: JSON has no such numbers, so they are written as
        null; counted, and the first of each field named (the reader saw one; see codec.py)."""
        stats = self._started_writer().stats
        for path, text in non_finite_paths(record):
            stats.non_finite_numbers += 1
            key = (stream, path)
            if key in self._non_finite_warned or len(self._non_finite_warned) >= _NON_FINITE_WARNINGS:
                continue
            self._non_finite_warned.add(key)
            self.logger.warning(
                "%s: stream '%s' field '%s' holds %s, which JSON has no number for: written as null (counted as "
                "non_finite_numbers in the run summary; further ones of this field are not logged)",
                where,
                stream,
                path,
                text,
            )

    def _reader(self) -> MessageReader:
        return t.cast(MessageReader, self.message_reader)

    # -- running and stopping ----------------------------------------------------------------

    def listen(self, file_input: t.IO[str] | None = None) -> None:  # type: ignore[misc]
        """Final in the SDK, overridden: it is the CLI's one entry point, and a run needs a frame
        around all of its reading that the SDK has no hook for: on bad input, deliver what came
        before it and emit its state; after a signal, a bounded drain (see `_handle_termination`)
        that, cut short, stops the process at once and exits non-zero; at the end, the summary.
        """
        try:
            self._listen(file_input)
        except _StopNow as stop:
            self._stop_now(stop.reason)

    def _listen(self, file_input: t.IO[str] | None) -> None:
        try:
            super().listen(file_input)
        except (_Terminated, ReadingStopped) as exc:
            if self._writer is None:
                raise  # stopped while starting: nothing was read, nothing to deliver
            self.logger.info("Termination signal: delivering buffered records and emitting state")
            self._draining = True
            if isinstance(exc, ReadingStopped):  # what was read is delivered, as in one process
                self._reader().finish_read()
            self.drain_all(is_endofpipe=True)
            self._writer.flush()
            self._raise_if_nothing_routed()
        except _BAD_INPUT as exc:
            error = self._input_error(exc)
            self._draining = True
            # Deliver everything read before the bad line; a DeliveryError raised here
            # is then the error to report.
            self.drain_all()
            if self._writer is not None:
                self._writer.flush()
            raise error from None
        finally:
            if not isinstance(sys.exc_info()[1], _StopNow):
                signal.setitimer(signal.ITIMER_REAL, 0)
                if self._pool is not None:
                    self._pool.close()
                self._shutdown()

    def _input_error(self, exc: BaseException) -> InputError:
        """The same problem as one line with the input line number, keeping the SDK's type."""
        message = str(exc.args[0]) if exc.args else type(exc).__name__
        message = message.splitlines()[0] if message else type(exc).__name__
        if isinstance(exc, RecordsWithoutSchemaException):
            message = message.split(" Check that")[0]
        line = self._reader().line_number
        if line and not message.startswith("input line"):
            message = f"input line {line}: {message}"
        return input_error(exc, message)

    def _shutdown(self) -> None:
        failing = sys.exc_info()[1]  # called from `finally`: the error the run is stopping on, if any
        if self._writer is None:
            return
        self._writer.close()
        if self._metrics is not None:
            self._metrics.log()
        self._warn_about_configuration(failing)
        for line in self._writer.summary_lines():
            self.logger.info(line)
        self._close_dead_letters(failing)

    def _warn_about_configuration(self, failing: BaseException | None) -> None:
        """At the end: what the run showed of the configuration (routing keys that matched no
        stream, privacy paths that matched nothing), one WARNING each."""
        if not isinstance(failing, NothingRoutedError):  # (that error says it all already)
            for line in self._audit.warnings():
                self.logger.warning(line)
        writer = self._started_writer()
        for line in writer.encoder.privacy.unmatched_paths(writer.stats):
            self.logger.warning(line)

    def _close_dead_letters(self, failing: BaseException | None) -> None:
        """Write what is left of the dead letters, on a failure exit too.

        When they cannot be written, that is the run's error; when the run is already stopping
        on another error (retries ran out), both lines are printed and the first stays the
        exception, so its line and exit are unchanged.
        """
        if self._dead_letters is None:
            return
        try:
            self._dead_letters.close()
        except DeadLetterError as exc:
            if failing is None:
                raise
            if not isinstance(failing, DeadLetterError):  # the same failure is printed once
                self.logger.error("target-kinesis: %s", exc)

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
            if self._metrics is not None:
                self._metrics.log()
            for line in self._writer.summary_lines():
                self.logger.info(line)
        self._close_dead_letters(_StopNow(reason))
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

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """Private SDK hook: SIGTERM / SIGINT deliver what was read, within drain_timeout_seconds.

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
        if self._reader().request_stop():
            return  # the mapping-process reader stops at its next whole point (no segment cut in two)
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
