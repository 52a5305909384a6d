"""An endpoint that stops answering writes: a stalled AWS endpoint.

What a target meets when a VPC endpoint, a proxy or a load balancer stops forwarding:
connections open, requests go out, and no byte comes back until the read time-out. The
stream's reads still answer (DescribeStreamSummary: one ACTIVE stream; ListShards: one
shard), as a stream whose writes stall would; every other request is held, unanswered,
until the server stops. Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from types import TracebackType

#: The requests answered; anything else (PutRecords, PutRecordBatch, ...) is held.
_ANSWERS = {
    "Kinesis_20131202.DescribeStreamSummary": {
        "StreamDescriptionSummary": {
            "StreamName": "stalled",
            "StreamARN": "arn:aws:kinesis:us-east-1:123456789012:stream/stalled",
            "StreamStatus": "ACTIVE",
            "OpenShardCount": 1,
        }
    },
    "Kinesis_20131202.ListShards": {
        "Shards": [
            {
                "ShardId": "shardId-000000000000",
                "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": str(2**128 - 1)},
                "SequenceNumberRange": {"StartingSequenceNumber": "1"},
            }
        ]
    },
}


class SilentEndpoint:
    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-endpoint", daemon=True)
        self.connections = 0
        #: Requests received and never answered (writes).
        self.held_requests = 0

    @property
    def url(self) -> str:
        host, port = self._listener.getsockname()
        return f"http://{host}:{port}"

    def start(self) -> SilentEndpoint:
        self._thread.start()
        return self

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed: stopping
            with self._lock:
                self._held.append(connection)
                self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        """Answer the reads on this connection; at the first other request, fall silent for good."""
        buffer = b""
        try:
            while not self._stopping.is_set():
                while b"\r\n\r\n" not in buffer:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(b":") for line in head.split(b"\r\n")[1:])
                }
                length = int(headers.get(b"content-length", b"0"))
                while len(buffer) < length:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                buffer = buffer[length:]
                answer = _ANSWERS.get(headers.get(b"x-amz-target", b"").decode())
                if answer is None:
                    with self._lock:
                        self.held_requests += 1
                    return  # held: the connection stays open, unanswered, until stop()
                body = json.dumps(answer).encode()
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
        except OSError:
            return

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            for connection in self._held:
                with contextlib.suppress(OSError):
                    connection.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SilentEndpoint:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
