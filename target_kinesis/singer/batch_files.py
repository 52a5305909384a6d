"""The records of a BATCH message: the Singer SDK's batch files, read line by line.

A tap that writes BATCH messages puts its records in files (JSON lines, gzip or not) and
sends their URLs in a manifest. Each record is handed on like the record of a RECORD
line, in file order, so STATE after the BATCH still means "acknowledged". Nothing is
read whole into memory: a batch file may hold millions of records.
"""

from __future__ import annotations

import gzip
import typing as t
import zlib
from collections.abc import Iterator

from target_kinesis.errors import InputError
from target_kinesis.records.codec import parse_object

#: What `encoding.format` a BATCH message may name; parquet needs pyarrow and is not read.
FORMATS = ("jsonl",)
COMPRESSIONS = (None, "none", "gzip")


def batch_records(
    stream: str, encoding: dict[str, t.Any], manifest: list[str], storage: dict[str, t.Any] | None = None
) -> Iterator[tuple[str, int, dict[str, t.Any], bool]]:
    """(file URL, line number, record, whether it holds NaN or an infinity) for every record
    of a manifest, in order; InputError names the file and line of what cannot be read.

    `storage`: the `batch_config.storage` setting (root and options for fsspec), when the
    files are relative to it; otherwise each URL is opened as it stands.
    """
    # Imported here, not at start-up: it brings fsspec and universal-pathlib (a tenth of a
    # second), which only a tap that sends BATCH messages needs.
    from singer_sdk.helpers._batch import StorageTarget

    where = f"BATCH for stream '{stream}'"
    file_format, compression = encoding.get("format"), encoding.get("compression")
    if file_format not in FORMATS:
        raise InputError(f"{where}: format '{file_format}' is not supported (jsonl, gzip or not)")
    if compression not in COMPRESSIONS:
        raise InputError(f"{where}: compression '{compression}' is not supported (gzip or none)")
    seen: list[str] = []
    for url in manifest:
        head, tail = StorageTarget.split_url(url)
        target = StorageTarget.from_dict(storage) if storage else StorageTarget.from_url(head)
        line_number = 0
        try:
            with target.open(tail, mode="rb") as raw:
                lines: t.Iterable[bytes] = gzip.GzipFile(fileobj=raw) if compression == "gzip" else raw
                for line_number, line in enumerate(lines, 1):
                    if line.strip():
                        record = parse_object(line, on_non_finite=seen.append)
                        yield url, line_number, record, bool(seen)
                        seen.clear()
        except ValueError as exc:
            raise InputError(f"{where}: {url} line {line_number}: not a JSON record ({exc})") from None
        except (OSError, EOFError, zlib.error) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise InputError(f"{where}: cannot read {url} ({reason})") from None
