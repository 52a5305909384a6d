"""An endpoint that accepts connections and never answers: a stalled AWS endpoint.

What a target meets when a VPC endpoint, a proxy or a load balancer stops forwarding:
connections open, requests go out, and no byte comes back until the read time-out.
Listens on 127.0.0.1 only; every connection is held open until the server stops.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class SilentEndpoint:
    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._held: list[socket.socket] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-endpoint", daemon=True)
        self.connections = 0

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
            self._held.append(connection)  # held open, never read from, never answered
            self.connections += 1

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for connection in self._held:
            connection.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SilentEndpoint:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
