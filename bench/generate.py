"""Write deterministic, realistic Singer input for the target-kinesis benchmark.

One SCHEMA message for stream ``orders`` (key ``order_id``, replication key ``created_at``),
N RECORD messages of nested order events (~450 bytes a line), a STATE message every
10,000 records and one at the end.

With ``--lean``: the same orders (same order_id, user_id, created_at: the same partition keys and
shards), each cut down to its header and first item (order_id, user_id, created_at, status,
total, currency, one item; ~240-byte lines): the Segment event target-kinesis builds around it
(type, event, userId, messageId, timestamp, sentAt, context, then the record as properties) is
~456 bytes, where the full order's is ~680. The capacity scenarios of ``run.py --capacity`` use
it: the issues' goals are stated for ~450-byte events.

With ``--hot-share F`` (0 to 1): the same records, except that a share F of them, evenly spread
(with 0.3: 3 records in every 10), have the one ``user_id`` ``HOT_USER_ID``; target-kinesis's
default partition key is the userId, so they all go to one Kinesis shard (``--capacity``'s
``kinesis-hot-key``).

With ``--streams N``: N streams (``table_00000`` ...), as a database tap with many tables
opens them, each with its own schema (6 to 10 properties of mixed types, named after the
stream's index, so no two schemas are equal): a SCHEMA then its ``--per-stream`` records,
stream after stream, and one STATE with a bookmark per stream at the end.

Usage::

    python bench/generate.py --records 100000 --out bench/out/orders-100000.singer [--seed 42]
    python bench/generate.py --records 40000 --hot-share 0.3 --out bench/out/orders-hot.singer
    python bench/generate.py --records 40000 --lean --out bench/out/orders-lean.singer
    python bench/generate.py --streams 2000 [--per-stream 1] --out bench/out/streams.singer
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import tempfile
from collections.abc import Iterator

try:  # orjson is a dependency of the project; fall back to json for a bare interpreter
    import orjson

    def _dumps(obj: object) -> bytes:
        return orjson.dumps(obj)

except ImportError:  # pragma: no cover
    import json

    def _dumps(obj: object) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()


STREAM = "orders"
STATE_EVERY = 10_000
HOT_USER_ID = "usr_hot"  # the one user of --hot-share's records
EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)

SCHEMA = {
    "type": "SCHEMA",
    "stream": STREAM,
    "key_properties": ["order_id"],
    "bookmark_properties": ["created_at"],
    "schema": {
        "type": "object",
        "additionalProperties": False,
        "required": ["order_id", "user_id", "created_at", "total", "currency", "items"],
        "properties": {
            "order_id": {"type": "string"},
            "user_id": {"type": "string"},
            "anonymous_id": {"type": ["string", "null"]},
            "created_at": {"type": "string", "format": "date-time"},
            "status": {"type": "string", "enum": ["placed", "paid", "shipped", "delivered"]},
            "total": {"type": "number"},
            "currency": {"type": "string"},
            "is_gift": {"type": "boolean"},
            "coupon": {"type": ["string", "null"]},
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "sku": {"type": "string"},
                        "qty": {"type": "integer"},
                        "price": {"type": "number"},
                    },
                },
            },
            "shipping": {
                "type": "object",
                "properties": {
                    "method": {"type": "string"},
                    "cost": {"type": "number"},
                    "address": {
                        "type": "object",
                        "properties": {
                            "city": {"type": "string"},
                            "country": {"type": "string"},
                            "postal_code": {"type": "string"},
                        },
                    },
                },
            },
        },
    },
}

_PRICES = [24.5, 12.0, 49.9, 6.75, 89.0, 19.99, 27.25, 22.4]
_CITIES = [
    ("Berlin", "DE", "10115"),
    ("Lyon", "FR", "69001"),
    ("Austin", "US", "73301"),
    ("Osaka", "JP", "530-0001"),
    ("Porto", "PT", "4000-001"),
    ("Leeds", "GB", "LS1 1AA"),
]
_CURRENCIES = ["EUR", "USD", "GBP", "JPY"]
_STATUSES = ["placed", "paid", "shipped", "delivered"]
_METHODS = ["standard", "express", "pickup"]
_COUPONS = ["WELCOME10", "SPRING24", "FREESHIP"]


def _iso(ts: dt.datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def make_record(rng: random.Random, i: int) -> dict:
    created = EPOCH + dt.timedelta(seconds=i * 3, milliseconds=rng.randrange(3000))
    items = []
    for _ in range(rng.choice((2, 2, 3))):
        items.append(
            {
                "sku": f"SKU-{rng.randrange(100000):05d}",
                "qty": rng.randint(1, 4),
                "price": rng.choice(_PRICES),
            }
        )
    city, country, postal = rng.choice(_CITIES)
    cost = rng.choice((0.0, 4.95, 9.9))
    total = round(sum(it["qty"] * it["price"] for it in items) + cost, 2)
    return {
        "order_id": f"ord_{i:010d}",
        "user_id": f"usr_{rng.randrange(1_000_000):07d}",
        "anonymous_id": (f"anon-{rng.getrandbits(48):012x}" if rng.random() < 0.2 else None),
        "created_at": _iso(created),
        "status": rng.choice(_STATUSES),
        "total": total,
        "currency": rng.choice(_CURRENCIES),
        "is_gift": rng.random() < 0.1,
        "coupon": rng.choice(_COUPONS) if rng.random() < 0.25 else None,
        "items": items,
        "shipping": {
            "method": rng.choice(_METHODS),
            "cost": cost,
            "address": {"city": city, "country": country, "postal_code": postal},
        },
    }


#: The fields a --lean order keeps (with its first item only).
LEAN_FIELDS = ("order_id", "user_id", "created_at", "status", "total", "currency", "items")


def make_lean_record(rng: random.Random, i: int) -> dict:
    """Record ``i`` of a --lean input: :func:`make_record`'s order (drawn the same way, so the ids,
    user and time are the full input's) cut down to :data:`LEAN_FIELDS` and its first item, its
    total that item's. Its event on the wire is ~456 bytes (the full order's ~680)."""
    full = make_record(rng, i)
    rec = {name: full[name] for name in LEAN_FIELDS}
    item = full["items"][0]
    rec["items"] = [item]
    rec["total"] = round(item["qty"] * item["price"], 2)
    return rec


def _state(value: str | None) -> bytes:
    bookmarks = {STREAM: {"replication_key": "created_at", "replication_key_value": value}}
    return _dumps({"type": "STATE", "value": {"bookmarks": bookmarks}})


def is_hot(i: int, hot_per_mille: int) -> bool:
    """Whether record ``i`` is one of the hot user's: ``hot_per_mille`` in every 1,000, evenly spread."""
    return (i + 1) * hot_per_mille // 1000 > i * hot_per_mille // 1000


def lines(records: int, seed: int = 42, hot_share: float = 0.0, lean: bool = False) -> Iterator[bytes]:
    """Yield the Singer lines (without newline) of an input of ``records`` records; with
    ``hot_share``, that share of the records (evenly spread) has user_id ``HOT_USER_ID``; with
    ``lean``, the records are :func:`make_lean_record`'s."""
    if not 0.0 <= hot_share <= 1.0:
        raise ValueError(f"hot_share must be between 0 and 1, not {hot_share}")
    hot_per_mille = round(hot_share * 1000)
    rng = random.Random(seed)
    make = make_lean_record if lean else make_record
    yield _dumps(SCHEMA)
    last = None
    for i in range(records):
        rec = make(rng, i)
        if hot_per_mille and is_hot(i, hot_per_mille):
            rec["user_id"] = HOT_USER_ID  # after make_record: the other fields are the plain input's
        last = rec["created_at"]
        yield _dumps({"type": "RECORD", "stream": STREAM, "record": rec})
        if (i + 1) % STATE_EVERY == 0:
            yield _state(last)
    yield _state(last)


# --------------------------------------------------------------------------------------
# many streams
# --------------------------------------------------------------------------------------

#: Optional properties added after the six every stream has (0 to 4 of them, by index).
_EXTRA_TYPES: tuple[dict, ...] = (
    {"type": "integer"},
    {"type": ["number", "null"]},
    {"type": "string", "enum": ["new", "open", "closed"]},
    {"type": "array", "items": {"type": "string"}},
    {"type": "object", "properties": {"code": {"type": "integer"}, "label": {"type": "string"}}},
)


def stream_name(index: int) -> str:
    return f"table_{index:05d}"


def _prefix(index: int) -> str:
    return f"t{index}"


def stream_schema(index: int) -> dict:
    """The SCHEMA message of stream ``index``: 6 + index % 5 properties, all named after it."""
    p = _prefix(index)
    properties: dict[str, dict] = {
        "id": {"type": "integer"},
        f"{p}_name": {"type": "string"},
        f"{p}_updated_at": {"type": "string", "format": "date-time"},
        f"{p}_note": {"type": ["string", "null"]},
        f"{p}_amount": {"type": "number"},
        f"{p}_active": {"type": "boolean"},
    }
    for j in range(index % 5):
        properties[f"{p}_x{j}"] = _EXTRA_TYPES[(index + j) % len(_EXTRA_TYPES)]
    return {
        "type": "SCHEMA",
        "stream": stream_name(index),
        "key_properties": ["id"],
        "bookmark_properties": [f"{p}_updated_at"],
        "schema": {"type": "object", "required": ["id", f"{p}_updated_at"], "properties": properties},
    }


def _extra_value(kind: dict, rng: random.Random) -> object:
    types = kind["type"]
    if types == "integer":
        return rng.randrange(1_000_000)
    if types == ["number", "null"]:
        return None if rng.random() < 0.3 else round(rng.uniform(0, 1000), 2)
    if "enum" in kind:
        return rng.choice(kind["enum"])
    if types == "array":
        return [f"tag{rng.randrange(50)}" for _ in range(rng.randrange(3))]
    return {"code": rng.randrange(100), "label": f"L{rng.randrange(10)}"}


def stream_record(index: int, n: int, rng: random.Random) -> dict:
    """Record ``n`` of stream ``index``, valid against :func:`stream_schema`."""
    p = _prefix(index)
    updated = EPOCH + dt.timedelta(seconds=index * 60 + n, milliseconds=rng.randrange(1000))
    record = {
        "id": n + 1,
        f"{p}_name": f"row {n} of {stream_name(index)}",
        f"{p}_updated_at": _iso(updated),
        f"{p}_note": None if rng.random() < 0.5 else f"note-{rng.getrandbits(32):08x}",
        f"{p}_amount": round(rng.uniform(0, 500), 2),
        f"{p}_active": rng.random() < 0.5,
    }
    for j in range(index % 5):
        record[f"{p}_x{j}"] = _extra_value(_EXTRA_TYPES[(index + j) % len(_EXTRA_TYPES)], rng)
    return record


def stream_lines(streams: int, per_stream: int = 1, seed: int = 42) -> Iterator[bytes]:
    """Yield the Singer lines of an input of ``streams`` streams of ``per_stream`` records."""
    rng = random.Random(seed)
    bookmarks = {}
    for index in range(streams):
        yield _dumps(stream_schema(index))
        name = stream_name(index)
        last = None
        for n in range(per_stream):
            rec = stream_record(index, n, rng)
            last = rec[f"{_prefix(index)}_updated_at"]
            yield _dumps({"type": "RECORD", "stream": name, "record": rec})
        bookmarks[name] = {"replication_key": f"{_prefix(index)}_updated_at", "replication_key_value": last}
    yield _dumps({"type": "STATE", "value": {"bookmarks": bookmarks}})


def write(records: int, out: str, seed: int = 42, hot_share: float = 0.0, lean: bool = False) -> dict:
    """Write the input atomically to ``out``; return stats."""
    stats = write_lines(lines(records, seed, hot_share, lean), records, out)
    if hot_share:
        stats.update(hot_share=hot_share, hot_user_id=HOT_USER_ID)
    if lean:
        stats.update(lean=True)
    return stats


def write_streams(streams: int, per_stream: int, out: str, seed: int = 42) -> dict:
    """Write the many-streams input atomically to ``out``; return stats."""
    stats = write_lines(stream_lines(streams, per_stream, seed), streams * per_stream, out)
    stats.update(streams=streams, per_stream=per_stream)
    return stats


def write_lines(source: Iterator[bytes], records: int, out: str) -> dict:
    """Write ``source``'s lines atomically to ``out``; return stats."""
    out_dir = os.path.dirname(os.path.abspath(out))
    os.makedirs(out_dir, exist_ok=True)
    n_lines = 0
    record_bytes = 0
    fd, tmp = tempfile.mkstemp(prefix=".gen-", dir=out_dir)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as fh:
            buf: list[bytes] = []
            for line in source:
                n_lines += 1
                if line.startswith(b'{"type":"RECORD"'):
                    record_bytes += len(line) + 1
                buf.append(line)
                if len(buf) >= 4096:
                    buf.append(b"")
                    fh.write(b"\n".join(buf))
                    buf.clear()
            if buf:
                buf.append(b"")
                fh.write(b"\n".join(buf))
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return {
        "records": records,
        "lines": n_lines,
        "bytes": os.path.getsize(out),
        "avg_record_line_bytes": (record_bytes / records) if records else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--records", type=int, help="number of RECORD messages (stream `orders`)")
    what.add_argument("--streams", type=int, help="number of streams, each with its own schema")
    parser.add_argument("--per-stream", type=int, default=1, help="records per stream with --streams (default 1)")
    parser.add_argument(
        "--hot-share", type=float, default=0.0, help=f"share of the records (0..1) whose user_id is {HOT_USER_ID!r}"
    )
    parser.add_argument(
        "--lean",
        action="store_true",
        help="each order cut down to its header and first item (~456-byte events on the wire; see above)",
    )
    parser.add_argument("--out", required=True, help="output file ('-' for stdout)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    if min(args.records or 0, args.streams or 0, args.per_stream) < 0:
        parser.error("--records, --streams and --per-stream must be >= 0")
    if not 0.0 <= args.hot_share <= 1.0 or (args.hot_share and args.streams is not None):
        parser.error("--hot-share is a share between 0 and 1, for --records")
    if args.lean and args.streams is not None:
        parser.error("--lean is for --records")
    if args.streams is not None:
        source = stream_lines(args.streams, args.per_stream, args.seed)
        records = args.streams * args.per_stream
    else:
        source = lines(args.records, args.seed, args.hot_share, args.lean)
        records = args.records
    if args.out == "-":
        out = sys.stdout.buffer
        for line in source:
            out.write(line + b"\n")
        out.flush()
        return 0
    stats = write_lines(source, records, args.out)
    print(
        f"wrote {stats['records']} records ({stats['lines']} lines, {stats['bytes']} bytes, "
        f"{stats['avg_record_line_bytes']:.0f} bytes/RECORD line) to {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
