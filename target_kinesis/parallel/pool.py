"""The mapping processes and their pipes, seen from the main process."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import multiprocessing
import pickle
import signal
import sys
import typing as t
from multiprocessing.connection import Connection

import fastjsonschema

from target_kinesis.config.settings import Settings
from target_kinesis.delivery.shards import ShardMap
from target_kinesis.errors import TargetKinesisError
from target_kinesis.parallel.channel import read_message
from target_kinesis.parallel.worker import CHUNK, RESULT, SCHEMA, SIGNALS, MappedChunk, worker_main

#: A pipe's buffer: the default 64 KiB takes a segment (up to 512 KiB) in many small
#: writes, each waiting for the other side to be scheduled; 1 MiB (Linux's default limit
#: for anyone) takes a whole segment or answer at once.
PIPE_BYTES = 1024 * 1024

# fastjsonschema imports parts of itself while compiling; do it once here, before any
# fork, so a child never waits on an import lock another thread held at that moment.
fastjsonschema.compile({"type": "object"})


def _widen(connection: Connection) -> None:
    """Grow a pipe's buffer to PIPE_BYTES where the system allows (speed only)."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or a lower limit
        fcntl.fcntl(connection.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


class MappingPool:
    """The mapping processes and their pipes, seen from the main process."""

    def __init__(
        self, processes: int, settings: Settings, *, validate: bool, shard_maps: dict[int, ShardMap] | None = None
    ) -> None:
        """`shard_maps`: the destinations' shard maps when the processes start, so that they
        predict each record's shard (the main process checks the map's version)."""
        context = multiprocessing.get_context("fork")
        self._inboxes: list[Connection] = []
        self.outboxes: list[Connection] = []
        #: Per mapping process, the buffer its answers are read into, reused (channel.read_message).
        self._answers: list[bytearray] = []
        self._processes: list[t.Any] = []
        sys.stdout.flush()  # a child must not inherit (and later print) buffered output
        sys.stderr.flush()
        # Signals stay blocked until a child has set them to ignored, so a SIGTERM
        # during start-up cannot run the main process's handler inside a child.
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        try:
            for _ in range(processes):
                inbox_read, inbox_write = context.Pipe(duplex=False)
                outbox_read, outbox_write = context.Pipe(duplex=False)
                _widen(inbox_write)
                _widen(outbox_write)
                others = [*self._inboxes, *self.outboxes, inbox_write, outbox_read]
                process = context.Process(
                    target=worker_main,
                    args=(inbox_read, outbox_write, settings, validate, dict(shard_maps or {}), others),
                    name="target-kinesis-mapper",
                    daemon=True,
                )
                process.start()
                inbox_read.close()
                outbox_write.close()
                self._inboxes.append(inbox_write)
                self.outboxes.append(outbox_read)
                self._answers.append(bytearray())
                self._processes.append(process)
        except BaseException:
            self.close()
            raise
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        atexit.register(self.close)

    @property
    def processes(self) -> tuple[multiprocessing.process.BaseProcess, ...]:
        """The mapping processes, for supervision (and the tests that kill one)."""
        return tuple(self._processes)

    def __len__(self) -> int:
        return len(self._processes)

    def broadcast_schema(self, line: bytes) -> None:
        for inbox in self._inboxes:
            self._send(inbox, SCHEMA + line)

    def send_chunk(self, worker: int, lines: bytes) -> None:
        """`lines`: RECORD lines, each ending with a newline."""
        self._send(self._inboxes[worker], CHUNK + lines)

    def result(self, worker: int) -> MappedChunk:
        """The answer to the oldest chunk `worker` has not answered yet (blocks)."""
        buffer = self._answers[worker]
        try:
            size = read_message(self.outboxes[worker].fileno(), buffer)
        except (EOFError, OSError):
            raise self._died(worker) from None
        with memoryview(buffer) as view:
            if view[:1] == RESULT:
                return t.cast(MappedChunk, pickle.loads(view[1:size]))
            failure = bytes(view[1:size])
        raise TargetKinesisError(f"mapping process {worker + 1} failed: {failure.decode(errors='replace')}")

    def _send(self, inbox: Connection, message: bytes) -> None:
        try:
            inbox.send_bytes(message)
        except OSError:
            raise self._died(self._inboxes.index(inbox)) from None

    def _died(self, worker: int) -> TargetKinesisError:
        process = self._processes[worker]
        process.join(timeout=1.0)
        return TargetKinesisError(
            f"mapping process {worker + 1} (pid {process.pid}) exited unexpectedly (exit code {process.exitcode}); "
            "out of memory? set mapping_processes to 0 to map in the main process"
        )

    def close(self) -> None:
        """Hang up: a process waiting for work sees the end of its input, one sending an
        answer nobody will read sees a broken pipe; either way it leaves. Also run at exit:
        the processes ignore SIGTERM, which is how multiprocessing ends daemon children."""
        atexit.unregister(self.close)
        for connection in (*self._inboxes, *self.outboxes):
            connection.close()
        for process in self._processes:
            process.join(timeout=5.0)
            if process.exitcode is None:
                process.kill()
                process.join(timeout=5.0)
        self._inboxes.clear()
        self.outboxes.clear()
        self._processes.clear()


__all__ = ["MappingPool"]
