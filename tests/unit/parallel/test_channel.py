"""A mapping process's end of its pipes (parallel/channel.py), against the main process's
`multiprocessing.Connection`s, with `serve` in a thread over real pipes."""

from __future__ import annotations

import os
import struct
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection

import pytest

from target_kinesis.parallel.channel import Received, header, read_message, serve


@contextmanager
def served(
    answer: Callable[[bytes], Sequence[bytes] | None],
) -> Iterator[tuple[Connection, Connection, threading.Thread]]:
    """`serve(answer)` in a thread; yields the main process's ends (to send, to receive)."""
    inbox_read, inbox_write = os.pipe()
    outbox_read, outbox_write = os.pipe()
    thread = threading.Thread(target=serve, args=(inbox_read, outbox_write, answer), daemon=True)
    thread.start()
    sending, receiving = Connection(inbox_write, readable=False), Connection(outbox_read, writable=False)
    try:
        yield sending, receiving, thread
    finally:
        sending.close()
        thread.join(timeout=10)
        receiving.close()
        for fd in (inbox_read, outbox_write):
            os.close(fd)


def echo(message: bytes) -> Sequence[bytes] | None:
    """Answers each message with b"<" + it, in two parts; none for b"quiet"."""
    return None if message == b"quiet" else (b"<", message)


def test_messages_arrive_whole_and_in_order_and_answers_read_back() -> None:
    big = os.urandom(3 * 1024 * 1024)  # larger than the receiving buffer: it grows
    messages = [b"a", b"quiet", b"", os.urandom(70_000), big, *(bytes([i]) * i for i in range(1, 200))]
    with served(echo) as (sending, receiving, thread):
        for message in messages:
            sending.send_bytes(message)
        answers = [receiving.recv_bytes() for message in messages if message != b"quiet"]
        sending.close()
        thread.join(timeout=10)
        assert not thread.is_alive()  # the end of its input ends `serve`
    assert answers == [b"<" + message for message in messages if message != b"quiet"]


def test_input_is_read_while_an_answer_waits_for_room() -> None:
    """The main process sends every chunk before it reads any answer; each answer is larger
    than a pipe holds. A process that stopped reading its input while it waited to send would
    leave both sides blocked for ever."""
    chunk = os.urandom(1024 * 1024)
    with served(lambda message: (message, message, message)) as (sending, receiving, _thread):
        done = threading.Event()

        def send_all() -> None:
            for _ in range(8):
                sending.send_bytes(chunk)
            done.set()

        sender = threading.Thread(target=send_all, daemon=True)
        sender.start()
        assert done.wait(timeout=20), "sending blocked: the input was not read while answers waited"
        answers = [receiving.recv_bytes() for _ in range(8)]
    assert answers == [chunk * 3] * 8


def test_a_reader_gone_ends_serve() -> None:
    with served(lambda message: (message * 200_000,)) as (sending, receiving, thread):
        receiving.close()
        sending.send_bytes(b"x" * 10)
        thread.join(timeout=10)
        assert not thread.is_alive()


def test_long_headers_are_read() -> None:
    """multiprocessing writes -1 and an 8-byte length for messages over 2 GiB."""
    assert header(5) == struct.pack("!i", 5)
    assert header(2**31) == struct.pack("!i", -1) + struct.pack("!Q", 2**31)
    read, write = os.pipe()
    try:
        os.write(write, struct.pack("!i", -1) + struct.pack("!Q", 3) + b"abc" + header(2) + b"de" + header(9) + b"par")
        received, messages = Received(size=16), deque[bytes]()
        assert received.read(read, messages)
        assert received.read(read, messages)  # the rest: "de", and the first bytes of the third
        assert list(messages) == [b"abc", b"de"]
        os.write(write, b"tial!!")
        assert received.read(read, messages)
        assert list(messages) == [b"abc", b"de", b"partial!!"]
        os.close(write)
        write = -1
        assert not received.read(read, messages)  # the end of the input
    finally:
        os.close(read)
        if write != -1:
            os.close(write)


@pytest.mark.parametrize("size", [1, 7, 4096])
def test_any_buffer_size_cuts_the_same(size: int) -> None:
    read, write = os.pipe()
    sent = [os.urandom(n) for n in (0, 1, 5, 300, 5000)]
    try:
        os.write(write, b"".join(header(len(m)) + m for m in sent))
        os.close(write)
        received, messages = Received(size=size), deque[bytes]()
        while received.read(read, messages):
            pass
        assert list(messages) == sent
    finally:
        os.close(read)


def test_read_message_reads_what_a_connection_sent_into_one_buffer() -> None:
    read, write = os.pipe()
    sent = [b"x", os.urandom(300_000), b"", os.urandom(10)]
    sender = Connection(write, readable=False)

    def send_all() -> None:
        for message in sent:
            sender.send_bytes(message)
        sender.close()

    thread = threading.Thread(target=send_all, daemon=True)
    try:
        thread.start()
        buffer = bytearray(4)
        got = []
        for _ in sent:
            size = read_message(read, buffer)
            got.append(bytes(buffer[:size]))
        assert got == sent
        thread.join(timeout=10)
        with pytest.raises(EOFError):
            read_message(read, buffer)
    finally:
        os.close(read)
