"""The Singer target: the SDK's face of a run that `run/` wires.

The SDK reads messages and keeps the sinks; this class is where its hooks meet what a
delivery pipeline needs (`run.lifecycle.Run`, which imports no SDK): destinations checked
before any input is read, STATE written only after the writer's flush returned (every record
read before it is acknowledged), a checkpoint at least every `state_flush_seconds`, a
bounded stop, and one clear line plus a non-zero exit for every bad input, bad config or
AWS failure.

Every override of a private or final SDK method is in this module, in one section of the
class, each saying why: `listen` (final), `_validate_config`, `_process_schema_message`,
`_process_record_message`, `_process_batch_message`, `_process_activate_version_message`,
`_process_state_message`, `_write_state_message`, `_handle_termination`. Private SDK members
used, not overridden: `Target._handle_max_record_age` (the SDK's max-age drain, called every
`_AGE_CHECK_RECORDS` records and after each segment the mapping processes finish, since
records skip the SDK's own path that calls it), `Target._sinks_active` (a stream's sink, to
count what a mapping process mapped for it), `PluginBase._config` (the configuration as
given, for our check) and `Sink._add_sdc_metadata_to_record`, only with
`add_record_metadata`.
"""

from __future__ import annotations

import copy
import os
import sys
import typing as t
from types import FrameType

from target_kinesis.gc_tuning import collections_paused

# These imports (botocore's, the SDK's, the target's) allocate most of what start-up makes,
# all of it living for the whole run: no collections meanwhile (gc_tuning.py).
with collections_paused():
    import click
    from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities
    from singer_sdk.target_base import Target  # not `singer_sdk`: sdk_import.py

    from target_kinesis import __version__, installed_version
    from target_kinesis.config.files import read_config_file
    from target_kinesis.config.schema import CONFIG_SCHEMA
    from target_kinesis.config.settings import Settings, config_errors, unknown_setting
    from target_kinesis.errors import ConfigError, InputError, OutputClosedError, TargetKinesisError
    from target_kinesis.events.event import Event
    from target_kinesis.log_safety import guard_logs
    from target_kinesis.parallel.segments import ParallelReader, ReadingStopped
    from target_kinesis.parallel.worker import MappedChunk
    from target_kinesis.records.codec import keep_long_integers
    from target_kinesis.records.pipeline import StreamPipeline, replication_key_of
    from target_kinesis.run.lifecycle import Run, StopNow, Terminated
    from target_kinesis.singer.batch_files import batch_records
    from target_kinesis.singer.errors import BAD_INPUT, RecordBeforeSchemaError, bad_input_line, input_error
    from target_kinesis.singer.metrics import DeliveryMetrics
    from target_kinesis.singer.reader import MessageReader
    from target_kinesis.singer.sink import EventSink

#: `target-kinesis --help` ends with the operator tools (each has its own --help). "\b" keeps
#: click from rewrapping the list.
TOOLS_EPILOG = """Operator tools, installed with the target (each reads --config FILE or --config ENV; each has --help):

\b
  target-kinesis-tail     print the events in a stream (Kinesis shards, or Firehose's S3 objects)
  target-kinesis-policy   print the least-privilege IAM policy and role trust policy for a config
  target-kinesis-local    bring up a local endpoint with the streams a config names ([local] extra)
  target-kinesis-redrive  send dead letters (a file or s3:// prefix) again, keeping their messageIds

Under Meltano: meltano invoke target-kinesis:tail --stream NAME, target-kinesis:policy,
target-kinesis:redrive SOURCE, target-kinesis:local (the project's configuration, no config file)."""

#: A record's max-age check (the SDK's five-minute drain) every this many records, not each one.
_AGE_CHECK_RECORDS = 1000


class TargetKinesis(Target):
    """Streams Singer records as Segment-spec events to Amazon Kinesis Data Streams and Data Firehose."""

    name = "target-kinesis"
    capabilities: t.ClassVar[list[CapabilitiesEnum]] = [*Target.capabilities, PluginCapabilities.BATCH]
    # A copy: the SDK appends its built-in settings (batch_size_rows, load_method, ...) to this
    # schema in place, and config/schema.py's PROPERTIES must stay the target's own settings
    # (the tools' --config ENV reader and the plugin definition read them).
    config_jsonschema = copy.deepcopy(CONFIG_SCHEMA)
    default_sink_class = EventSink

    #: The run this target is the face of; set once the configuration is checked (the signal
    #: handler, installed while the SDK builds the target, looks for it).
    _run: Run

    def __init__(
        self,
        *,
        config: dict | str | list | None = None,
        parse_env_config: bool = False,
        validate_config: bool = True,
        setup_mapper: bool = True,
        message_reader: t.Any = None,
    ) -> None:
        super().__init__(
            config=config,
            parse_env_config=parse_env_config,
            validate_config=validate_config,
            setup_mapper=setup_mapper,
            message_reader=message_reader or MessageReader(start=self.start, non_finite=self._non_finite_seen),
        )
        # A drain is bookkeeping here (records were handed to the writer as they were read,
        # and STATE waits for AWS in `_write_state_message`): the SDK's default of draining
        # up to 8 sinks at once starts a joblib thread pool for it, 30 ms at each drain.
        self.max_parallelism = 1
        self.settings = Settings.from_config(self.config)
        config_now = self.config
        #: No stream maps, flattening or record metadata: records need nothing of the SDK's.
        self._plain_records = not (
            config_now.get("stream_maps")
            or config_now.get("flattening_enabled")
            or config_now.get("add_record_metadata")
        )
        self._validate_records = bool(config_now.get("validate_records", True))
        self._run = Run(
            self.settings,
            self.logger,
            metrics_for=DeliveryMetrics,
            plain_records=self._plain_records,
            validate_records=self._validate_records,
        )
        guard_logs(self.settings.secret_values())
        keep_long_integers()
        self._sink_class = EventSink.serving(self)
        self._replication_keys: dict[str, str | None] = {}
        #: Records a mapping process mapped for a stream whose sink is not made yet: its SCHEMA
        #: is in the same segment, and is processed here after the segment's counts are taken.
        self._uncounted: dict[str, int] = {}
        self._records_since_age_check = 0

    # -- the SDK's public hooks ---------------------------------------------------------------

    @classmethod
    def get_plugin_version(cls) -> str:
        return __version__

    @classmethod
    def get_sdk_version(cls) -> str:
        """The SDK's version as the SDK gives it, read from the METADATA headers
        (`installed_version`: 7 ms less at every start, where the SDK logs it)."""
        return installed_version("singer_sdk") or "[could not be detected]"

    @classmethod
    def get_singer_command(cls) -> click.Command:
        """The SDK's command, with help that says what the target does and names the tools."""
        command = super().get_singer_command()
        command.help = (
            "Read Singer messages on stdin (or --input), map each record onto a Segment event and write "
            "the events to Amazon Kinesis Data Streams or Amazon Data Firehose. --about lists every "
            "setting; --config ENV reads them from TARGET_KINESIS_<SETTING> environment variables."
        )
        command.epilog = TOOLS_EPILOG
        return command

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

    def get_sink_class(self, stream_name: str) -> type[EventSink]:
        """The sink class bound to this run (`EventSink.serving`)."""
        return self._sink_class

    def process_endofpipe(self) -> None:
        """The SDK's last drain, then every record delivered, or the "nothing routed" error."""
        self._run.end_of_input()
        super().process_endofpipe()
        self._run.finish()

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
        except Terminated:
            cls.logger.info("Terminated before any input was read")
            sys.exit(0)

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
        return self._run.started_writer().write(event)

    def tally(self, stream: str) -> list[int]:
        return self._run.audit.tally(stream)

    # -- what the message reader needs (singer.reader) ------------------------------------------

    def start(self, parallel_possible: bool = False) -> ParallelReader | None:
        """Start the run (`Run.start`) when the message reader begins reading: the CLI's and
        the SDK test runner's path alike; a second call starts nothing new."""
        return self._run.start(
            parallel_possible, take_counts=self._take_mapped_counts, after_segment=self._handle_max_record_age
        )

    def _take_mapped_counts(self, chunk: MappedChunk) -> None:
        """What the SDK counts per record in this process, counted per chunk (the run counts
        its own first)."""
        self._run.count_mapped(chunk)
        for stream, count in chunk.per_stream.items():
            sink = self._sinks_active.get(stream)
            if isinstance(sink, EventSink):
                sink.count_mapped(count)
            else:  # counted when its SCHEMA (in this chunk's segment, handled next) makes the sink
                self._uncounted[stream] = self._uncounted.get(stream, 0) + count

    def _non_finite_seen(self, line: int, stream: str, record: dict[str, t.Any]) -> None:
        self._run.non_finite_found(f"input line {line}", stream, record)

    def _reader(self) -> MessageReader:
        return t.cast(MessageReader, self.message_reader)

    # -- overrides of private or final SDK methods, each saying why ----------------------------

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

    def _process_schema_message(self, message_dict: dict) -> None:
        """Private SDK hook: the bookmark field (the default `timestamp`) is in the SCHEMA
        message only, and the SDK does not hand it to sinks."""
        stream = message_dict["stream"]
        self._replication_keys[stream] = replication_key_of(message_dict)
        super()._process_schema_message(message_dict)
        self._run.audit.declare(stream)
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
                self._run.non_finite_found(f"BATCH file {url} line {line}", stream, record)
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
        if self._run.checkpoint_due():
            self.drain_all()

    def _write_state_message(self, state: dict) -> None:
        """Private SDK hook: STATE only once AWS acknowledged every record read before it, and
        not when the run holds it back (`Run.checkpoint` says when); a reader that closed
        stdout is one error line, not a traceback."""
        if not self._run.checkpoint(state):
            return
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
        self._run.state_written(state)

    def listen(self, file_input: t.IO[str] | None = None) -> None:  # type: ignore[misc]
        """Final in the SDK, overridden: it is the CLI's one entry point, and a run needs a frame
        around all of its reading that the SDK has no hook for: on bad input, deliver what came
        before it and emit its state; after a signal, a bounded drain (see `_handle_termination`)
        that, cut short, stops the process at once and exits non-zero; at the end, the summary.
        """
        try:
            self._listen(file_input)
        except StopNow as stop:
            self._run.stop_now(stop.reason)

    def _listen(self, file_input: t.IO[str] | None) -> None:
        try:
            super().listen(file_input)
        except (Terminated, ReadingStopped) as exc:
            if not self._run.started:
                raise  # stopped while starting: nothing was read, nothing to deliver
            self._run.stopped_reading()
            if isinstance(exc, ReadingStopped):  # what was read is delivered, as in one process
                self._reader().finish_read()
            self.drain_all(is_endofpipe=True)
            self._run.finish()
        except BAD_INPUT as exc:
            error = bad_input_line(exc, self._reader().line_number)
            self._run.draining = True
            # Deliver everything read before the bad line; a DeliveryError raised here
            # is then the error to report.
            self.drain_all()
            self._run.flush()
            raise error from None
        finally:
            failing = sys.exc_info()[1]  # the error the run is stopping on, if any
            if not isinstance(failing, StopNow):
                self._run.shutdown(failing)

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """Private SDK hook: SIGTERM / SIGINT deliver what was read, within drain_timeout_seconds
        (`Run.on_signal`); the SDK's own handler drains without a bound."""
        if not hasattr(self, "_run"):
            raise Terminated(signum)  # still being built: nothing started, nothing to deliver
        self._run.on_signal(signum, self._reader())


__all__ = ["TargetKinesis"]
