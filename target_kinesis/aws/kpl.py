"""The Kinesis Producer Library's aggregated record format (pure: bytes in, bytes out).

One Kinesis record that carries many user records, each with its own partition key, which
the KCL and AWS's deaggregation modules (aws-kinesis-agg, for Lambda) hand out one by one:

    F3 89 9A C2  ||  AggregatedRecord (protobuf)  ||  MD5 of the protobuf (16 bytes)

    message AggregatedRecord {
      repeated string partition_key_table     = 1;
      repeated string explicit_hash_key_table = 2;
      repeated Record records                 = 3;
    }
    message Record {
      required uint64 partition_key_index     = 1;
      optional uint64 explicit_hash_key_index = 2;
      required bytes  data                    = 3;
      repeated Tag    tags                    = 4;   (never written)
    }

Written by hand rather than with a protobuf runtime: three fields, and the encoder runs once
per event on the main process's hot path, where a generated message class costs several
times more. Sizes are computed as records are added, so that an aggregate never grows past
its limit and never needs to be re-encoded to be measured.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

MAGIC = b"\xf3\x89\x9a\xc2"
DIGEST_BYTES = 16
#: Magic and digest: what an aggregate adds to its protobuf.
FRAMING_BYTES = len(MAGIC) + DIGEST_BYTES
#: The KPL's AggregationMaxSize: an aggregate's data at most this many bytes.
DEFAULT_MAX_BYTES = 51_200

# Field keys: (field number << 3) | wire type 2 (length-delimited) or 0 (varint).
_PARTITION_KEY_TABLE = b"\x0a"
_EXPLICIT_HASH_KEY_TABLE = b"\x12"
_RECORDS = b"\x1a"
_KEY_INDEX = b"\x08"
_DATA = b"\x1a"


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


#: Varints of the values an aggregate is made of (indexes, lengths below 2 MiB), looked up
#: rather than computed: the encoder runs once per event.
_SMALL = 1 << 21
#: (Built byte by byte: one and two-byte varints directly, half the start-up cost of `_varint`.)
_VARINTS = [bytes((value,)) for value in range(0x80)] + [
    bytes(((value & 0x7F) | 0x80, value >> 7)) for value in range(0x80, 1 << 14)
]


def varint(value: int) -> bytes:
    """A protobuf base-128 varint (unsigned)."""
    return _VARINTS[value] if value < 16384 else _varint(value)


def varint_size(value: int) -> int:
    return 1 if value < 0x80 else 2 if value < 16384 else 3 if value < _SMALL else len(_varint(value))


def _field(key: bytes, payload: bytes) -> bytes:
    return key + varint(len(payload)) + payload


def key_entry_size(key: str) -> int:
    """Bytes a partition key adds to the key table."""
    size = len(key.encode("utf-8"))
    return 1 + varint_size(size) + size


def record_entry_size(key_index: int, data_size: int) -> int:
    """Bytes one user record adds to the aggregate (its Record message, framed)."""
    inner = 1 + varint_size(key_index) + 1 + varint_size(data_size) + data_size
    return 1 + varint_size(inner) + inner


def pack(keys: Sequence[str], records: Sequence[tuple[int, bytes]]) -> bytes:
    """An aggregated record: `keys` is the partition key table, `records` (key index, data).

    No explicit hash key table: the aggregate's own ExplicitHashKey places it on its shard,
    and each user record's partition key is what the KCL checks against that shard."""
    parts = [_field(_PARTITION_KEY_TABLE, key.encode("utf-8")) for key in keys]
    append = parts.append
    for index, data in records:
        key_index, length = varint(index), varint(len(data))
        inner = 2 + len(key_index) + len(length) + len(data)
        append(b"".join((_RECORDS, varint(inner), _KEY_INDEX, key_index, _DATA, length)))
        append(data)
    message = b"".join(parts)
    return b"".join((MAGIC, message, hashlib.md5(message).digest()))  # the format's checksum, not security


def packed_size(keys: Sequence[str], records: Sequence[tuple[int, bytes]]) -> int:
    """len(pack(keys, records)) without packing (the sum `Aggregate` keeps as it grows)."""
    return (
        FRAMING_BYTES
        + sum(key_entry_size(key) for key in keys)
        + sum(record_entry_size(index, len(data)) for index, data in records)
    )


class NotAggregated(ValueError):
    """The bytes are not a (valid) KPL aggregated record: a plain record, or damaged."""


def unpack(blob: bytes) -> list[tuple[str, str | None, bytes]]:
    """The user records of an aggregated record: (partition key, explicit hash key, data).

    NotAggregated when `blob` lacks the magic, its digest does not match, the protobuf is
    malformed or holds no record: consumers then treat it as one ordinary record, as the KCL
    and AWS's deaggregation modules do.
    """
    if len(blob) < FRAMING_BYTES or not blob.startswith(MAGIC):
        raise NotAggregated("no KPL magic")
    message, digest = blob[len(MAGIC) : -DIGEST_BYTES], blob[-DIGEST_BYTES:]
    if hashlib.md5(message).digest() != digest:  # the format's checksum, not security
        raise NotAggregated("digest does not match")
    keys: list[str] = []
    hash_keys: list[str] = []
    records: list[tuple[int, int | None, bytes]] = []
    try:
        for number, value in _fields(message):
            if number == 1:
                keys.append(_bytes(value).decode("utf-8"))
            elif number == 2:
                hash_keys.append(_bytes(value).decode("ascii"))
            elif number == 3:
                records.append(_record(_bytes(value)))
        if not records:
            raise TypeError("no user record")
        return [(keys[k], hash_keys[h] if h is not None else None, data) for k, h, data in records]
    except (IndexError, UnicodeDecodeError, TypeError) as exc:
        raise NotAggregated(f"malformed aggregate: {exc}") from None


def _bytes(value: int | bytes) -> bytes:
    """A length-delimited field's value; a varint where bytes belong is malformed."""
    if not isinstance(value, bytes):
        raise TypeError("a number where bytes belong")
    return value


def _int(value: int | bytes) -> int:
    if not isinstance(value, int):
        raise TypeError("bytes where a number belongs")
    return value


def _record(message: bytes) -> tuple[int, int | None, bytes]:
    key_index: int | None = None
    hash_index: int | None = None
    data: bytes | None = None
    for number, value in _fields(message):
        if number == 1:
            key_index = _int(value)
        elif number == 2:
            hash_index = _int(value)
        elif number == 3:
            data = _bytes(value)
    if key_index is None or data is None:
        raise TypeError("a record without its partition key index or data")
    return key_index, hash_index, data


def _fields(message: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) of each field: varints as int, length-delimited as bytes."""
    fields: list[tuple[int, int | bytes]] = []
    at, end = 0, len(message)
    while at < end:
        tag, at = _read_varint(message, at)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == 0:
            value, at = _read_varint(message, at)
            fields.append((number, value))
        elif wire_type == 2:
            size, at = _read_varint(message, at)
            if at + size > end:
                raise IndexError("a field runs past the end")
            fields.append((number, message[at : at + size]))
            at += size
        elif wire_type in (1, 5):  # fixed 64 / 32 bits: skipped, but never past the end
            at += 8 if wire_type == 1 else 4
            if at > end:
                raise IndexError("a field runs past the end")
        else:
            raise TypeError(f"wire type {wire_type}")
    return fields


def _read_varint(message: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = message[at]  # IndexError past the end: malformed
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7
        if shift > 63:
            raise TypeError("varint too long")


__all__ = [
    "DEFAULT_MAX_BYTES",
    "FRAMING_BYTES",
    "MAGIC",
    "NotAggregated",
    "key_entry_size",
    "pack",
    "packed_size",
    "record_entry_size",
    "unpack",
    "varint",
]
