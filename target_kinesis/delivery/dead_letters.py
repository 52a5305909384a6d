"""Dead letters: records we chose not to send or could not deliver, kept for replay.

One JSON object per line: the event as it would have been written, where it was going,
and why it is here. An operator replays them with any producer, or fixes and re-runs.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path
from typing import Any

import orjson

from target_kinesis.errors import ConfigError

#: Owner read and write, nobody else.
FILE_MODE = 0o600


class DeadLetters:
    def __init__(self, path: str | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file: Any = None
        if path:
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                # Dead letters are whole events (emails, ids): readable by their owner only,
                # from the moment the file exists, and tightened if it existed before.
                descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
                if os.fstat(descriptor).st_mode & 0o077:
                    os.fchmod(descriptor, FILE_MODE)
                self._file = os.fdopen(descriptor, "ab")
            except OSError as exc:
                raise ConfigError(f"setting 'dead_letter_path': cannot open {path}: {exc.strerror}") from exc

    @property
    def enabled(self) -> bool:
        return self._file is not None

    def write(
        self,
        *,
        reason: str,
        service: str,
        stream: str,
        data: bytes,
        partition_key: str | None,
        error_code: str | None = None,
        error_message: str | None = None,
        attempts: int = 0,
    ) -> None:
        if self._file is None:
            return
        payload = data.rstrip(b"\n")
        record: Any = (
            orjson.Fragment(payload) if payload.startswith((b"{", b"[")) else payload.decode("utf-8", "replace")
        )
        line = orjson.dumps(
            {
                "reason": reason,
                "service": service,
                "stream": stream,
                "error_code": error_code,
                "error_message": error_message,
                "attempts": attempts,
                "partition_key": partition_key,
                "at": dt.datetime.now(dt.timezone.utc).isoformat(),
                "record": record,
            }
        )
        with self._lock:
            self._file.write(line + b"\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
