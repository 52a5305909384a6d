"""The pipes between the main process and a mapping process, in `multiprocessing.Connection`'s
framing (a 4-byte big-endian length, or -1 and an 8-byte one, then the bytes) without its
copies.

`serve` is a mapping process's end of them, read and written by its one thread; the main
process sends with `Connection.send_bytes` and reads each answer with `read_message`, into a
buffer it reuses (`Connection.recv_bytes` makes a fresh buffer per read, and copies twice).

Why not a `Connection` and a thread that keeps reading the input, as before: the process
must keep reading its input while it waits to send an answer (else the main process,
blocked sending the next chunk, and this process, blocked sending an answer, wait on each
other when both pipes are full). A reading thread did that, but it woke at every piece of a
chunk that arrived and took the GIL from the mapping thread each time: 16,000 futex calls per
100,000 records, 3.5 us of CPU per record (a seventh of the process's). Here non-blocking
pipes and `poll` do the same in one thread: the input is read between chunks and whenever an
answer waits for room, never during mapping.
"""

from __future__ import annotations

import os
import select
import struct
from collections import deque
from collections.abc import Callable, Sequence

_SHORT = struct.Struct("!i")
_LONG = struct.Struct("!Q")
#: The largest message with the short header (as `multiprocessing.connection`).
_SHORT_MAX = 0x7FFFFFFF
_READ_BYTES = 1024 * 1024


def header(size: int) -> bytes:
    """`multiprocessing.Connection`'s length header for a message of `size` bytes."""
    return _SHORT.pack(size) if size <= _SHORT_MAX else _SHORT.pack(-1) + _LONG.pack(size)


class Received:
    """What the input held so far, in one buffer reused for the whole run: reading into it
    allocates nothing (a fresh 1 MiB `os.read` buffer per read cost page faults)."""

    def __init__(self, size: int = _READ_BYTES) -> None:
        self.buffer = bytearray(size)
        self.filled = 0

    def read(self, fd: int, messages: deque[bytes]) -> bool:
        """Read what `fd` holds now and move each whole message to `messages` (without its
        header); False at the end of the input."""
        if self.filled == len(self.buffer):  # a message larger than the buffer: grow it
            self.buffer.extend(bytes(len(self.buffer)))
        with memoryview(self.buffer) as view:
            try:
                count = os.readv(fd, [view[self.filled :]])
            except BlockingIOError:
                return True
            except OSError:
                return False
        if not count:
            return False
        self.filled += count
        self._cut(messages)
        return True

    def _cut(self, messages: deque[bytes]) -> None:
        buffer, filled, position = self.buffer, self.filled, 0
        with memoryview(buffer) as view:
            while filled - position >= _SHORT.size:
                (size,) = _SHORT.unpack_from(buffer, position)
                start = position + _SHORT.size
                if size == -1:
                    if filled - start < _LONG.size:
                        break
                    (size,) = _LONG.unpack_from(buffer, start)
                    start += _LONG.size
                if filled - start < size:
                    break
                messages.append(bytes(view[start : start + size]))
                position = start + size
            if position:
                view[: filled - position] = view[position:filled]
        self.filled = filled - position


def read_message(fd: int, buffer: bytearray) -> int:
    """Read one whole message from `fd` (blocking) into the start of `buffer`, grown when it
    is too small; its size. EOFError at the end of the input."""
    _read_exactly(fd, buffer, _SHORT.size)
    (size,) = _SHORT.unpack_from(buffer)
    if size == -1:
        _read_exactly(fd, buffer, _LONG.size)
        (size,) = _LONG.unpack_from(buffer)
    return _read_exactly(fd, buffer, size)


def _read_exactly(fd: int, buffer: bytearray, size: int) -> int:
    if len(buffer) < size:
        buffer.extend(bytes(size - len(buffer)))
    got = 0
    with memoryview(buffer) as view:
        while got < size:
            count = os.readv(fd, [view[got:size]])
            if not count:
                raise EOFError
            got += count
    return size


def serve(inbox: int, outbox: int, answer: Callable[[bytes], Sequence[bytes] | None]) -> None:
    """Answer each message read from `inbox` (a file descriptor), in order, on `outbox`;
    return when the other end hangs up (end of input, or a broken pipe).

    `answer` gets a message and gives its answer as parts to send back to back as one
    message (written with `writev`, not joined), or None for no answer.
    """
    os.set_blocking(inbox, False)
    os.set_blocking(outbox, False)
    poller = select.poll()
    poller.register(inbox, select.POLLIN)
    received = Received()
    messages: deque[bytes] = deque()
    unsent: list[memoryview] = []
    while True:
        if messages and not unsent:
            parts = answer(messages.popleft())
            if parts is not None:
                unsent = [memoryview(part) for part in (header(sum(map(len, parts))), *parts) if part]
                if not _send(outbox, unsent):
                    return
                if unsent:
                    poller.register(outbox, select.POLLOUT)
            if messages and not unsent:
                # Look at the input without waiting, then answer the next message.
                if not received.read(inbox, messages):
                    return
                continue
        for fd, _ in poller.poll():
            if fd == inbox:
                if not received.read(inbox, messages):
                    return
            elif not _send(outbox, unsent):
                return
            elif not unsent:
                poller.unregister(outbox)


def _send(outbox: int, unsent: list[memoryview]) -> bool:
    """Write as much of `unsent` as the pipe takes now (dropping what was written); False
    when nobody reads the other end any more."""
    try:
        written = os.writev(outbox, unsent)
    except BlockingIOError:
        return True
    except OSError:  # BrokenPipeError: the main process is gone
        return False
    while unsent and written >= len(unsent[0]):
        written -= len(unsent.pop(0))
    if written:
        unsent[0] = unsent[0][written:]
    return True
