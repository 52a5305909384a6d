"""One run of the target: started once, checkpointed before each STATE, drained, stopped.

`Run` holds what a run owns (the writer and its producers, the dead letters, the mapping
processes, the routing audit, the signal count) and does what the Singer target's hooks
ask of it at each point: start when reading begins, count what the mapping processes
mapped, make each STATE safe to print (every record read before it acknowledged, never past
records routed nowhere by a naming mistake), end the input, shut down with the summary, and
bound the drain after a signal. The SDK's side (sinks, the message loop, stdout) stays in
`singer/target.py`, which calls in here; what the run needs back from it is given as
callables and small protocols, so nothing here imports the SDK.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
import typing as t
from collections.abc import Callable, Mapping
from types import FrameType

from target_kinesis.config.destinations import Destination
from target_kinesis.config.settings import Settings
from target_kinesis.delivery.audit import RoutingAudit
from target_kinesis.delivery.dead_letters import DeadLetterError, DeadLetters
from target_kinesis.delivery.encoding import encoder_for
from target_kinesis.delivery.producer import Producer
from target_kinesis.delivery.writer import EventWriter
from target_kinesis.errors import NothingRoutedError
from target_kinesis.gc_tuning import collections_paused, tune_for_streaming
from target_kinesis.malloc_tuning import keep_large_blocks
from target_kinesis.parallel.pool import MappingPool
from target_kinesis.parallel.segments import ParallelReader
from target_kinesis.parallel.worker import MappedChunk
from target_kinesis.records.codec import non_finite_paths
from target_kinesis.run.start import aws_clients, open_dead_letters, start_mapping_processes, start_writer

#: Fields holding NaN or an infinity warned about by name (each stream and field once); the
#: rest are counted only.
_NON_FINITE_WARNINGS = 10


class Terminated(BaseException):
    """Raised from the SIGTERM/SIGINT handler so the main loop unwinds to a clean drain."""


class StopNow(BaseException):
    """The drain after a signal must end now: a second signal, or drain_timeout_seconds passed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RunMetrics(t.Protocol):
    """The METRIC lines of a run (singer/metrics.py: they are the SDK's lines)."""

    def maybe_log(self) -> None:
        """Log what changed, when an interval passed since the last lines."""

    def log(self) -> None:
        """Log what changed since the last lines."""


#: Makes a run's metrics from its producers, once they are started.
MetricsFor = Callable[[Mapping[Destination, Producer]], RunMetrics]


class StopRequest(t.Protocol):
    """The message reader, as far as a signal needs it (singer/reader.py)."""

    def request_stop(self) -> bool:
        """Ask the mapping-process reader to stop at its next whole point; False when none runs."""


class Run:
    """What one run owns and does below the Singer SDK (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        logger: logging.Logger,
        *,
        metrics_for: MetricsFor,
        plain_records: bool,
        validate_records: bool,
    ) -> None:
        """`plain_records`: no stream maps, flattening or record metadata (the SDK's to apply),
        so records may be mapped by the mapping processes."""
        self.settings = settings
        self._logger = logger
        self._metrics_for = metrics_for
        self._plain_records = plain_records
        self._validate_records = validate_records
        #: Records read and routed nowhere, per Singer stream (the sinks keep its tallies).
        self.audit = RoutingAudit(settings.events, (rule.event for rule in settings.rules))
        #: Set once the run delivers what it read (end of input, bad input, a signal): a
        #: signal from then on bounds that drain instead of starting one.
        self.draining = False
        self._signals = 0
        #: (stream, field) of the NaN and infinities warned about by name.
        self._non_finite_warned: set[tuple[str, str]] = set()
        self._last_checkpoint = time.monotonic()
        self._last_state_written: dict[str, t.Any] | None = None
        self._writer: EventWriter | None = None
        self._dead_letters: DeadLetters | None = None
        self._metrics: RunMetrics | None = None
        self._pool: MappingPool | None = None

    # -- start-up -------------------------------------------------------------------------------

    def start(
        self,
        parallel_possible: bool,
        *,
        take_counts: Callable[[MappedChunk], None],
        after_segment: Callable[[], None],
    ) -> ParallelReader | None:
        """Credentials, the preflight describe of every destination, producers; then, when the
        input can be read by them, the mapping processes, whose reader is returned (it hands
        each chunk's counts to `take_counts`, and calls `after_segment` after each segment).

        A second call starts nothing new.
        """
        if self._writer is None:
            with collections_paused():  # clients and models: made once, kept for the run
                self._writer = self._start_writer()
                self._metrics = self._metrics_for(self._writer.producers)
            tune_for_streaming()
            keep_large_blocks()
        if parallel_possible and self._pool is None:
            self._pool = start_mapping_processes(
                self.settings,
                self._writer,
                plain_records=self._plain_records,
                validate=self._validate_records,
                logger=self._logger,
            )
        if self._pool is None:
            return None
        return ParallelReader(
            self._pool, take_counts=take_counts, hand_over=self._writer.hand_over, after_segment=after_segment
        )

    def _start_writer(self) -> EventWriter:
        s = self.settings
        self._logger.info("AWS region %s (from %s)", s.region, s.region_source)
        encoder = encoder_for(s)
        clients = aws_clients(s, encoder)
        self._dead_letters = open_dead_letters(s, clients)
        return start_writer(s, encoder, clients, self._dead_letters, self._logger)

    @property
    def started(self) -> bool:
        """Whether the writer was started (reading began and the destinations were checked)."""
        return self._writer is not None

    def started_writer(self) -> EventWriter:
        """The writer; RuntimeError before the run started."""
        if self._writer is None:
            raise RuntimeError("target-kinesis was not started: the message reader starts it before the first line")
        return self._writer

    # -- counting -------------------------------------------------------------------------------

    def count_mapped(self, chunk: MappedChunk) -> None:
        """What a mapping process counted for one chunk: the writer's run statistics, and the
        routing audit's tallies per stream."""
        self.started_writer().count_mapped(chunk.counts)
        for stream, count in chunk.per_stream.items():
            self.audit.count(stream, count, chunk.unmapped.get(stream, 0))

    def non_finite_found(self, where: str, stream: str, record: dict[str, t.Any]) -> None:
        """NaN and infinities in a record: JSON has no such numbers, so they are written as
        null; counted, and the first of each field named (the reader saw one; see codec.py)."""
        stats = self.started_writer().stats
        for path, text in non_finite_paths(record):
            stats.non_finite_numbers += 1
            key = (stream, path)
            if key in self._non_finite_warned or len(self._non_finite_warned) >= _NON_FINITE_WARNINGS:
                continue
            self._non_finite_warned.add(key)
            self._logger.warning(
                "%s: stream '%s' field '%s' holds %s, which JSON has no number for: written as null (counted as "
                "non_finite_numbers in the run summary; further ones of this field are not logged)",
                where,
                stream,
                path,
                text,
            )

    # -- checkpoints ----------------------------------------------------------------------------

    def checkpoint_due(self) -> bool:
        """Whether `state_flush_seconds` passed since the last checkpoint."""
        return time.monotonic() - self._last_checkpoint >= self.settings.state_flush_seconds

    def checkpoint(self, state: dict[str, t.Any]) -> bool:
        """Before a STATE: AWS acknowledged every record read so far and the dead letters are
        written. Whether `state` may be printed: not while every record read was routed
        nowhere by what looks like a naming mistake (`RoutingAudit.mistaken`: a bookmark past
        them would make the fixed re-run skip them), nor when it is the bookmark printed last
        (it tells Meltano nothing new)."""
        if self._writer is not None:
            self._writer.flush()
        if self._dead_letters is not None:
            self._dead_letters.flush()  # a STATE never covers a dead letter held only in memory
        if self._metrics is not None:
            self._metrics.maybe_log()
        self._last_checkpoint = time.monotonic()
        if self.audit.mistaken():
            return False
        return state != self._last_state_written

    def state_written(self, state: dict[str, t.Any]) -> None:
        """`state` was printed: the same one again is not."""
        self._last_state_written = state

    # -- the end --------------------------------------------------------------------------------

    def end_of_input(self) -> None:
        """All input is read and mapped: the mapping processes have nothing left to do."""
        self.draining = True  # a signal from here on bounds this drain, as any other
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def stopped_reading(self) -> None:
        """A signal stopped the read; what was read is delivered next (the caller drains)."""
        self._logger.info("Termination signal: delivering buffered records and emitting state")
        self.draining = True

    def flush(self) -> None:
        """Wait until AWS acknowledged every record handed over (nothing, before the start)."""
        if self._writer is not None:
            self._writer.flush()

    def finish(self) -> None:
        """Deliver everything (a run without any STATE must too); then a run that routed
        nothing by a naming mistake ends as an error (its STATE was held)."""
        self.flush()
        failure = self.audit.failure_line()
        if failure is not None:
            raise NothingRoutedError(failure)

    def shutdown(self, failing: BaseException | None) -> None:
        """The run is over (`failing`: the error it stops on, if any): stop the timer and the
        mapping processes, close the producers, log the metrics, the configuration's warnings
        and the summary, and write what is left of the dead letters."""
        signal.setitimer(signal.ITIMER_REAL, 0)
        if self._pool is not None:
            self._pool.close()
        if self._writer is None:
            return
        self._writer.close()
        if self._metrics is not None:
            self._metrics.log()
        self._warn_about_configuration(failing)
        for line in self._writer.summary_lines():
            self._logger.info(line)
        self._close_dead_letters(failing)

    def _warn_about_configuration(self, failing: BaseException | None) -> None:
        """At the end: what the run showed of the configuration (routing keys that matched no
        stream, privacy paths that matched nothing), one WARNING each."""
        if not isinstance(failing, NothingRoutedError):  # (that error says it all already)
            for line in self.audit.warnings():
                self._logger.warning(line)
        writer = self.started_writer()
        for line in writer.encoder.privacy.unmatched_paths(writer.stats):
            self._logger.warning(line)

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
                self._logger.error("target-kinesis: %s", exc)

    # -- signals and stopping -------------------------------------------------------------------

    def on_signal(self, signum: int, reader: StopRequest) -> None:
        """SIGTERM / SIGINT: deliver what was read, within drain_timeout_seconds.

        The first signal starts the drain (or, if one is already under way at the end of
        input or after bad input, bounds it); a second one, or the timer, stops at once.
        """
        if self._signals:
            raise StopNow(f"signal {signum} received again while delivering")
        self._signals += 1
        timeout = self.settings.drain_timeout_seconds
        signal.signal(signal.SIGALRM, self._drain_timed_out)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        self._logger.info(
            "Signal %d: delivering what was read, for at most %g s (drain_timeout_seconds); "
            "a second signal stops at once",
            signum,
            timeout,
        )
        if self.draining:
            return  # already delivering: the drain goes on, bounded now
        if reader.request_stop():
            return  # the mapping-process reader stops at its next whole point (no segment cut in two)
        raise Terminated(signum)

    def _drain_timed_out(self, signum: int, frame: FrameType | None) -> None:
        raise StopNow(f"drain_timeout_seconds ({self.settings.drain_timeout_seconds:g} s) passed")

    def stop_now(self, reason: str) -> t.NoReturn:
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
                self._logger.info(line)
        self._close_dead_letters(StopNow(reason))
        self._logger.error(
            "target-kinesis: stopped before every record was delivered (%s): %s not acknowledged; "
            "no STATE covering them was printed, a re-run resumes from the last one",
            reason,
            ", ".join(waiting) or "no record",
        )
        logging.shutdown()
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
        os._exit(1)


__all__ = ["MetricsFor", "Run", "RunMetrics", "StopNow", "StopRequest", "Terminated"]
