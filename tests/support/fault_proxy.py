"""A fault-injecting HTTP proxy in front of moto's server or kinesalite.

Why: moto never fails single records inside a batch, never throttles, never drops a
connection and never loses a response, yet those are the cases where a Kinesis/Firehose
writer loses or duplicates data. This proxy sits on 127.0.0.1 between the target and the
local server, forwards every request verbatim, and injects AWS-shaped faults into the
Put calls only (PutRecord(s), PutRecordBatch), repeatably (``random.Random(seed)``):

* ``record_failure_rate``: each record of a PutRecords / PutRecordBatch fails with this
  probability. Only the other records are forwarded, so failed records are not stored
  (as on AWS), and the answer carries the failures at their original positions.
* ``call_failure_rate`` / ``call_failure_kinds``: the whole call fails with one of
  ``"500"``, ``"503"``, ``"throttle"``, ``"reset"`` (nothing stored) or
  ``"timeout_after_store"`` (stored, then the answer comes ``delay_seconds`` late, so
  the client times out: the "response lost" case that makes a retry write duplicates).
* ``fatal_error``: ``(status, code)`` answered to every Put call (e.g. AccessDenied).
* ``expire_token_once_every``: every Nth Put call gets ExpiredTokenException.
* ``put_answer`` = ``(status, content_type, body)``: answered to Put calls instead of
  forwarding them (nothing stored), for the first ``put_answer_calls`` of them (None: all):
  what a gateway or proxy in between answers (an HTML page with 429 or 200), or an AWS error
  with a message of its own (a skewed clock's ``Signature expired``).
* ``sts_error`` = ``(status, code, message)``: answered, as STS's XML error, to every
  AssumeRole after the first ``sts_error_after`` (STS refusing a refresh mid-run, or
  refusing DurationSeconds above the role's maximum).

Precedence per Put call: fatal_error, then put_answer, then the token expiry, then a call
failure, then record failures. Random draws are repeatable for a client that sends one call at a time;
with concurrent callers, the arrival order (and so who gets which draw) can vary.

Describe*, ListShards, GetRecords, S3 and STS calls always pass through untouched, and
every request is logged (``.requests``) so tests can check which AWS actions the target
used, e.g. that its AssumeRole carried an ExternalId.

Actions are named like IAM actions, ``service:Operation`` (``kinesis:PutRecords``,
``firehose:PutRecordBatch``, ``sts:AssumeRole``), so they compare directly with an IAM
policy; REST calls (S3) are ``s3:<HTTP method>``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import re
import socket
import struct
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

HOST = "127.0.0.1"
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"

SERVICE_BY_TARGET_PREFIX = {"Kinesis_20131202": "kinesis", "Firehose_20150804": "firehose"}
PUT_ACTIONS = frozenset({"kinesis:PutRecord", "kinesis:PutRecords", "firehose:PutRecord", "firehose:PutRecordBatch"})
BATCH_PUT_ACTIONS = frozenset({"kinesis:PutRecords", "firehose:PutRecordBatch"})
CALL_FAULT_KINDS = ("500", "503", "throttle", "reset", "timeout_after_store")

DEFAULT_RECORD_ERROR_CODES = {
    "kinesis": "ProvisionedThroughputExceededException",
    "firehose": "ServiceUnavailableException",
}
DEFAULT_THROTTLE_ERROR_CODES = {
    "kinesis": "ProvisionedThroughputExceededException",
    "firehose": "ThrottlingException",
}

# Limits AWS checks on the whole request before storing anything. A request over them is
# forwarded whole, without record failures, so the upstream rejects it as AWS would
# (forwarding only the surviving records could turn an invalid request into a valid one).
_LIMITS = {  # service: (max records, max request bytes, max record bytes)
    "kinesis": (500, 5 * 1024 * 1024, 1024 * 1024),
    "firehose": (500, 4 * 1024 * 1024, 1000 * 1024),
}

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",  # we hold the whole body already; 100-continue was answered to the client
        "content-length",  # recomputed: the body may have been rewritten
    }
)
_ACCESS_KEY_RE = re.compile(r"Credential=([^/,\s]+)/")
_SCOPE_RE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")
# Keys of a Put body that hold record payloads: dropped from the request log unless
# keep_bodies, so a long test does not keep every byte it sent.
_PAYLOAD_KEYS = frozenset({"Records", "Record", "Data", "PartitionKey", "ExplicitHashKey"})


@dataclass(frozen=True)
class FaultConfig:
    """The faults in force; replaced atomically by :meth:`FaultProxy.configure`.

    ``record_error_code`` / ``throttle_error_code`` of None mean the service's default
    (Kinesis: ProvisionedThroughputExceededException for both; Firehose:
    ServiceUnavailableException per record, ThrottlingException per call).
    ``call_failure_kinds`` leaves out ``timeout_after_store`` by default, because it
    stores records and stalls for ``delay_seconds``: ask for it explicitly.
    """

    record_failure_rate: float = 0.0
    record_error_code: str | None = None
    call_failure_rate: float = 0.0
    call_failure_kinds: tuple[str, ...] = ("500", "503", "throttle", "reset")
    throttle_error_code: str | None = None
    delay_seconds: float = 5.0
    fatal_error: tuple[int, str] | None = None
    expire_token_once_every: int | None = None
    session_seconds: float | None = None
    put_answer: tuple[int, str, str] | None = None
    put_answer_calls: int | None = None
    sts_error: tuple[int, str, str] | None = None
    sts_error_after: int = 0

    def __post_init__(self) -> None:
        for name in ("record_failure_rate", "call_failure_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value!r}")
        kinds = tuple(self.call_failure_kinds)
        object.__setattr__(self, "call_failure_kinds", kinds)
        unknown = set(kinds) - set(CALL_FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown call_failure_kinds {sorted(unknown)}; use {CALL_FAULT_KINDS}")
        if self.call_failure_rate > 0 and not kinds:
            raise ValueError("call_failure_rate > 0 needs at least one call_failure_kind")
        if self.delay_seconds < 0:
            raise ValueError("delay_seconds must be >= 0")
        if self.expire_token_once_every is not None and self.expire_token_once_every < 1:
            raise ValueError("expire_token_once_every must be >= 1 (or None to disable)")
        if self.fatal_error is not None:
            status, code = self.fatal_error
            object.__setattr__(self, "fatal_error", (int(status), str(code)))


class RequestLogEntry(NamedTuple):
    """One request the proxy saw: ``(action, body, headers)``.

    ``body`` is the parsed JSON or form parameters; for Put calls the record payloads are
    left out unless the proxy keeps bodies. REST (S3) bodies are kept only with keep_bodies,
    as ``{"_raw": bytes}``.
    """

    action: str
    body: dict[str, Any]
    headers: dict[str, str]


class UpstreamError(RuntimeError):
    """The upstream server could not be reached or gave no answer (answered 502)."""


class _Response(NamedTuple):
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        super().__init__((HOST, 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    """One client connection; requests on it are handled in turn (HTTP/1.1 keep-alive)."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.upstream: http.client.HTTPConnection | None = None
        self.server.proxy._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass  # a reset connection cannot be flushed
        finally:
            if self.upstream is not None:
                self.upstream.close()
            self.server.proxy._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is kept in the proxy, not printed."""

    def _handle(self) -> None:
        try:
            body = self._read_body()
        except (OSError, ValueError) as exc:
            self.server.proxy._record_error(f"reading request: {exc!r}")
            self.close_connection = True
            return
        self.server.proxy._serve(self, body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send(self, response: _Response) -> None:
        """Write ``response`` to the client in one write; a client that went away is not an
        error. (Headers and body in separate small writes would meet Nagle's algorithm and
        the client's delayed ACK: 40 ms per call.)"""
        reason = response.reason or _reason(response.status)
        lines = [f"{self.protocol_version} {response.status} {reason}".rstrip()]
        lines.extend(f"{name}: {value}" for name, value in response.headers)
        if self.command != "HEAD" or not any(n.lower() == "content-length" for n, _ in response.headers):
            lines.append(f"Content-Length: {len(response.body)}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head if self.command == "HEAD" else head + response.body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def reset(self) -> None:
        """Drop the connection with a TCP RST (SO_LINGER 0) and no answer at all."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # Close the reader first: while it holds a reference (makefile), socket.close()
        # would not close the descriptor and the server's shutdown(SHUT_WR) would send a
        # FIN. (wfile writes to the socket directly and holds none.)
        with contextlib.suppress(OSError):
            self.rfile.close()
        with contextlib.suppress(OSError):
            self.connection.close()

    def forward(self, body: bytes, upstream_timeout: float, url: tuple[str, int]) -> _Response:
        """Send this request (with ``body``) upstream on this connection's own upstream
        connection, retrying once if a kept-alive upstream connection turned out stale."""
        headers = [(n, v) for n, v in self.headers.items() if n.lower() not in _HOP_BY_HOP]
        send_body: bytes | None = body
        if not body and "Content-Length" not in self.headers:
            send_body = None
        for attempt in range(2):
            if self.upstream is None:
                self.upstream = http.client.HTTPConnection(*url, timeout=upstream_timeout)
            reused = self.upstream.sock is not None
            try:
                self.upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in headers:
                    self.upstream.putheader(name, value)
                if send_body is not None:
                    self.upstream.putheader("Content-Length", str(len(send_body)))
                self.upstream.endheaders(send_body)
                answer = self.upstream.getresponse()
                data = answer.read()
            except (OSError, http.client.HTTPException) as exc:
                self.upstream.close()
                self.upstream = None
                if reused and attempt == 0:
                    continue
                raise UpstreamError(f"{self.command} {self.path}: {exc!r}") from exc
            if answer.will_close:
                self.upstream.close()
                self.upstream = None
            kept = [(n, v) for n, v in answer.getheaders() if n.lower() not in _HOP_BY_HOP]
            if self.command == "HEAD" and answer.getheader("Content-Length") is not None:
                kept.append(("Content-Length", answer.getheader("Content-Length", "0")))
            return _Response(answer.status, answer.reason, kept, data)
        raise AssertionError("unreachable")


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _error_response(status: int, code: str, message: str) -> _Response:
    """An AWS JSON-protocol error (botocore reads the code from ``__type``)."""
    body = json.dumps({"__type": code, "message": message}).encode()
    return _Response(status, "", _json_headers(), body)


def _sts_error_response(status: int, code: str, message: str) -> _Response:
    """An STS (query protocol) error, as AWS answers it: XML."""
    body = (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{message}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()
    return _Response(status, _reason(status), [("Content-Type", "text/xml")], body)


def _json_headers() -> list[tuple[str, str]]:
    return [("Content-Type", JSON_CONTENT_TYPE), ("x-amzn-RequestId", str(uuid.uuid4()))]


def _b64_size(value: Any) -> int:
    """Decoded size of a base64 string, without decoding it."""
    if not isinstance(value, str):
        return 0
    return len(value) * 3 // 4 - value[-2:].count("=")


def _identify(method: str, path: str, headers: Any, body: bytes) -> tuple[str, dict[str, Any]]:
    """The IAM-style action name of a request and its parsed parameters."""
    target = headers.get("X-Amz-Target")
    if target:
        prefix, _, operation = target.partition(".")
        service = SERVICE_BY_TARGET_PREFIX.get(prefix, prefix.split("_")[0].lower())
        try:
            params = json.loads(body) if body else {}
        except ValueError:
            params = {}
        return f"{service}:{operation}", params if isinstance(params, dict) else {}
    scope = _SCOPE_RE.search(headers.get("Authorization", ""))
    content_type = headers.get("Content-Type", "")
    query = urlsplit(path).query
    form: dict[str, Any] = {}
    if "x-www-form-urlencoded" in content_type:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    elif "Action=" in query:
        form = dict(parse_qsl(query, keep_blank_values=True))
    if "Action" in form:
        service = scope.group(1) if scope else "sts"
        return f"{service}:{form['Action']}", form
    if path.startswith("/moto-api"):
        return f"moto:{method}", {}
    service = scope.group(1) if scope else "unknown"
    return f"{service}:{method}", {}


class FaultProxy:
    """Fault-injecting HTTP proxy on 127.0.0.1 in front of ``upstream_url``.

    Fault settings are the fields of :class:`FaultConfig`, given as keyword arguments here
    or later to :meth:`configure` (thread-safe, takes effect for the next request).
    ``keep_bodies`` keeps whole request bodies in the log (payloads included); the log
    keeps the last ``log_limit`` requests (None: all), so a soak test cannot exhaust memory.
    Single-record calls (PutRecord) get call faults only, as on AWS, where a single put
    fails as a whole.
    """

    def __init__(
        self,
        upstream_url: str,
        seed: int | None = 0,
        *,
        keep_bodies: bool = False,
        log_limit: int | None = 100_000,
        upstream_timeout: float = 60.0,
        **faults: Any,
    ) -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream_url must be http://host:port, got {upstream_url!r}")
        self.upstream_url = upstream_url
        self._upstream = (parts.hostname, parts.port or 80)
        self.keep_bodies = keep_bodies
        self.log_limit = log_limit
        self.upstream_timeout = upstream_timeout
        self._config = FaultConfig(**faults)
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._reset_state()

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> FaultProxy:
        """Bind 127.0.0.1 on a free port and serve in a background thread."""
        if self._server is not None:
            raise RuntimeError("FaultProxy already started")
        self._stopping.clear()
        self._server = _Server(self)
        self._port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FaultProxy:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake delayed answers and drop open client connections."""
        self._stopping.set()
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start() if self._server is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the proxy listens (or, once stopped, listened) on."""
        if self._port is None:
            raise RuntimeError("FaultProxy not started")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: give this to the client as its endpoint URL."""
        return f"http://{HOST}:{self.port}"

    # ------------------------------------------------------------ configuration
    @property
    def config(self) -> FaultConfig:
        """The faults in force now (an immutable snapshot)."""
        return self._config

    def configure(self, **changes: Any) -> FaultConfig:
        """Change fault settings at runtime; unknown names raise TypeError."""
        names = {f.name for f in fields(FaultConfig)}
        unknown = set(changes) - names
        if unknown:
            raise TypeError(f"unknown fault settings {sorted(unknown)}; known: {sorted(names)}")
        with self._lock:
            self._config = replace(self._config, **changes)
            return self._config

    def clear_faults(self) -> None:
        """Back to a plain pass-through proxy (counters and log are kept)."""
        with self._lock:
            self._config = FaultConfig()

    def reseed(self, seed: int | None) -> None:
        """Restart the random sequence (and the Put-call count for token expiry)."""
        with self._lock:
            self._rng = random.Random(seed)
            self._put_calls = 0

    # ---------------------------------------------------------------- counters
    def _reset_state(self) -> None:
        self._calls: Counter[str] = Counter()
        self._faulted: Counter[str] = Counter()
        self._records_forwarded = 0
        self._records_failed = 0
        self._put_calls = 0
        self._assume_role_calls = 0
        self._requests: deque[RequestLogEntry] = deque(maxlen=self.log_limit)
        self._errors: list[str] = []
        # Access key id -> wall-clock expiry of the credentials we shortened.
        self._expiry: dict[str, float] = {}

    def reset_counters(self) -> None:
        """Zero the counters and empty the request log and error list."""
        with self._lock:
            self._reset_state()

    @property
    def calls(self) -> Counter[str]:
        """Requests seen per action (``kinesis:PutRecords``...), a copy."""
        with self._lock:
            return Counter(self._calls)

    @property
    def faulted(self) -> Counter[str]:
        """Calls answered with an injected fault, per kind (``500``, ``503``, ``throttle``,
        ``reset``, ``timeout_after_store``, ``fatal``, ``expired_token``), a copy."""
        with self._lock:
            return Counter(self._faulted)

    @property
    def records_forwarded(self) -> int:
        """Records of Put calls sent upstream (each may still fail there)."""
        with self._lock:
            return self._records_forwarded

    @property
    def records_failed(self) -> int:
        """Records answered as failed by injection (not stored)."""
        with self._lock:
            return self._records_failed

    @property
    def requests(self) -> list[RequestLogEntry]:
        """The requests seen (the last ``log_limit``), in arrival order, a copy."""
        with self._lock:
            return list(self._requests)

    @property
    def errors(self) -> list[str]:
        """The proxy's own failures (upstream unreachable, unreadable request...)."""
        with self._lock:
            return list(self._errors)

    def actions(self) -> set[str]:
        """The set of actions seen, e.g. to compare with the target's IAM policy."""
        with self._lock:
            return set(self._calls)

    def requests_for(self, action: str) -> list[RequestLogEntry]:
        """The logged requests of one action."""
        return [entry for entry in self.requests if entry.action == action]

    def stats(self) -> dict[str, Any]:
        """All counters at once, for a failure message."""
        with self._lock:
            return {
                "calls": dict(self._calls),
                "faulted": dict(self._faulted),
                "records_forwarded": self._records_forwarded,
                "records_failed": self._records_failed,
                "errors": list(self._errors),
            }

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _record_error(self, message: str) -> None:
        with self._lock:
            self._errors.append(message)

    # --------------------------------------------------------------- handling
    def _serve(self, handler: _Handler, body: bytes) -> None:
        try:
            action, params = _identify(handler.command, handler.path, handler.headers, body)
            self._log(action, params, handler.headers, body)
            if action == "sts:AssumeRole" and self._sts_refuses():
                assert self._config.sts_error is not None
                handler.send(_sts_error_response(*self._config.sts_error))
                return
            if action == "sts:AssumeRole" and self._config.session_seconds is not None:
                handler.send(self._shorten_session(self._forward(handler, body), self._config.session_seconds))
                return
            if action not in PUT_ACTIONS:
                handler.send(self._forward(handler, body))
                return
            self._serve_put(handler, action, params, body)
        except UpstreamError as exc:
            self._record_error(f"upstream unreachable: {exc}")
            handler.send(_error_response(502, "ProxyUpstreamError", str(exc)))
        except Exception as exc:  # a proxy bug must show up, not hang the client
            self._record_error(f"{handler.command} {handler.path}: {exc!r}")
            handler.send(_error_response(502, "ProxyError", repr(exc)))

    def _sts_refuses(self) -> bool:
        with self._lock:
            self._assume_role_calls += 1
            config = self._config
            refuses = config.sts_error is not None and self._assume_role_calls > config.sts_error_after
            if refuses:
                self._faulted["sts_error"] += 1
            return refuses

    def _log(self, action: str, params: dict[str, Any], headers: Any, body: bytes) -> None:
        if self.keep_bodies:
            logged = params if params or not body else {"_raw": body}
        elif action in PUT_ACTIONS:
            logged = {k: v for k, v in params.items() if k not in _PAYLOAD_KEYS}
        else:
            logged = params
        with self._lock:
            self._calls[action] += 1
            self._requests.append(RequestLogEntry(action, logged, dict(headers.items())))

    def _shorten_session(self, response: _Response, seconds: float) -> _Response:
        """Rewrite an AssumeRole answer to expire in `seconds`, and enforce that expiry.

        STS will not issue sessions under 900 s; a test of a long run with refreshing
        credentials needs them to expire within seconds, and a server that refuses the
        expired ones, as AWS does.
        """
        if response.status != 200:
            return response
        text = response.body.decode()
        key_id = re.search(r"<AccessKeyId>([^<]+)</AccessKeyId>", text)
        expires = time.time() + seconds
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))
        text = re.sub(r"<Expiration>[^<]+</Expiration>", f"<Expiration>{stamp}</Expiration>", text)
        if key_id:
            with self._lock:
                # Whole seconds on the wire: enforce what the client was told.
                self._expiry[key_id.group(1)] = float(int(expires))
        body = text.encode()
        headers = [(k, v) for k, v in response.headers if k.lower() != "content-length"]
        return response._replace(body=body, headers=headers)  # send() sets Content-Length

    def _forward(self, handler: _Handler, body: bytes) -> _Response:
        return handler.forward(body, self.upstream_timeout, self._upstream)

    def _serve_put(self, handler: _Handler, action: str, params: dict[str, Any], body: bytes) -> None:
        service = action.split(":", 1)[0]
        raw_records = params.get("Records")
        batch = action in BATCH_PUT_ACTIONS and isinstance(raw_records, list)
        records: list[Any] = raw_records if batch else []
        with self._lock:
            config = self._config
            self._put_calls += 1
            fault: str | None = None
            failed: list[bool] = []
            key_id = _ACCESS_KEY_RE.search(handler.headers.get("Authorization", ""))
            expiry = self._expiry.get(key_id.group(1)) if key_id else None
            if expiry is not None and time.time() >= expiry:
                fault = "expired_by_clock"
            elif config.fatal_error is not None:
                fault = "fatal"
            elif config.put_answer is not None and (
                config.put_answer_calls is None or self._put_calls <= config.put_answer_calls
            ):
                fault = "canned"
            elif config.expire_token_once_every and self._put_calls % config.expire_token_once_every == 0:
                fault = "expired_token"
            elif config.call_failure_rate > 0 and self._rng.random() < config.call_failure_rate:
                fault = self._rng.choice(config.call_failure_kinds)
            elif batch and config.record_failure_rate > 0 and self._within_limits(service, records):
                failed = [self._rng.random() < config.record_failure_rate for _ in records]
            if fault is not None:
                self._faulted[fault] += 1
        record_count = len(records) if batch else 1

        if fault is not None:
            self._serve_call_fault(handler, fault, config, service, body, record_count)
        elif any(failed):
            self._serve_partial(handler, service, params, failed, config)
        else:
            response = self._forward(handler, body)
            if response.status == 200:
                self._count(forwarded=record_count)
            handler.send(response)

    @staticmethod
    def _within_limits(service: str, records: list[Any]) -> bool:
        max_records, max_bytes, max_record_bytes = _LIMITS.get(service, _LIMITS["kinesis"])
        if len(records) > max_records:
            return False
        total = 0
        for record in records:
            if not isinstance(record, dict):
                return False
            size = _b64_size(record.get("Data")) + len(record.get("PartitionKey") or "")
            if size > max_record_bytes:
                return False
            total += size
        return total <= max_bytes

    def _count(self, *, forwarded: int = 0, failed: int = 0) -> None:
        with self._lock:
            self._records_forwarded += forwarded
            self._records_failed += failed

    def _serve_call_fault(
        self,
        handler: _Handler,
        fault: str,
        config: FaultConfig,
        service: str,
        body: bytes,
        record_count: int,
    ) -> None:
        if fault == "canned":
            assert config.put_answer is not None
            status, content_type, text = config.put_answer
            handler.send(_Response(status, _reason(status), [("Content-Type", content_type)], text.encode()))
        elif fault == "fatal":
            assert config.fatal_error is not None
            status, code = config.fatal_error
            handler.send(_error_response(status, code, f"{code} (injected by FaultProxy)"))
        elif fault in ("expired_token", "expired_by_clock"):
            handler.send(
                _error_response(
                    400,
                    "ExpiredTokenException",
                    "The security token included in the request is expired (injected by FaultProxy)",
                )
            )
        elif fault == "500":
            handler.send(_error_response(500, "InternalFailure", "Internal service failure (injected by FaultProxy)"))
        elif fault == "503":
            handler.send(_error_response(503, "ServiceUnavailable", "Service unavailable (injected by FaultProxy)"))
        elif fault == "throttle":
            code = config.throttle_error_code or DEFAULT_THROTTLE_ERROR_CODES.get(service, "ThrottlingException")
            handler.send(_error_response(400, code, "Rate exceeded (injected by FaultProxy)"))
        elif fault == "reset":
            handler.reset()
        elif fault == "timeout_after_store":
            response = self._forward(handler, body)
            if response.status == 200:
                self._count(forwarded=record_count)
            self._stopping.wait(config.delay_seconds)
            handler.close_connection = True  # the client has given up on this connection
            handler.send(response)
        else:  # pragma: no cover - FaultConfig validates kinds
            raise ValueError(fault)

    def _serve_partial(
        self,
        handler: _Handler,
        service: str,
        params: dict[str, Any],
        failed: list[bool],
        config: FaultConfig,
    ) -> None:
        records: list[Any] = params["Records"]
        error_code = config.record_error_code or DEFAULT_RECORD_ERROR_CODES.get(service, "ServiceUnavailableException")
        error_entry = {
            "ErrorCode": error_code,
            "ErrorMessage": f"{error_code}: record failed (injected by FaultProxy)",
        }
        kept = [r for r, fail in zip(records, failed, strict=True) if not fail]
        upstream_entries: list[dict[str, Any]] = []
        upstream_failed = 0
        extra: dict[str, Any] = {}
        entries_key = "Records" if service == "kinesis" else "RequestResponses"
        count_key = "FailedRecordCount" if service == "kinesis" else "FailedPutCount"
        headers = _json_headers()
        if kept:
            new_body = json.dumps({**params, "Records": kept}, separators=(",", ":")).encode()
            response = self._forward(handler, new_body)
            if response.status != 200:
                handler.send(response)  # the whole call failed upstream: pass that on
                return
            answer = json.loads(response.body)
            upstream_entries = list(answer.get(entries_key, []))
            upstream_failed = int(answer.get(count_key, 0))
            extra = {k: v for k, v in answer.items() if k not in (entries_key, count_key)}
            headers = [(n, v) for n, v in response.headers if n.lower() != "content-length"]
            if len(upstream_entries) != len(kept):
                raise RuntimeError(f"upstream answered {len(upstream_entries)} entries for {len(kept)} records")
        entries = iter(upstream_entries)
        merged = [dict(error_entry) if fail else next(entries) for fail in failed]
        n_failed = sum(failed)
        result: dict[str, Any] = {count_key: n_failed + upstream_failed, entries_key: merged}
        if service == "firehose":
            result.setdefault("Encrypted", False)
        result.update(extra)
        self._count(forwarded=len(kept), failed=n_failed)
        handler.send(_Response(200, "OK", headers, json.dumps(result).encode()))


def failed_positions(response: dict[str, Any]) -> list[int]:
    """Indexes of the failed entries of a PutRecords / PutRecordBatch answer."""
    entries: Iterable[dict[str, Any]] = response.get("Records") or response.get("RequestResponses", [])
    return [i for i, entry in enumerate(entries) if "ErrorCode" in entry]


__all__ = [
    "CALL_FAULT_KINDS",
    "FaultConfig",
    "FaultProxy",
    "RequestLogEntry",
    "failed_positions",
]
