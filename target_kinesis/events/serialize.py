"""The JSON of what lands in a stream, and the canonical JSON ids are derived from.

orjson writes both; what it cannot write on its own (integers beyond 64 bits, Decimals)
is handled here, and what JSON output cannot hold at all (nesting beyond orjson's depth, a
lone surrogate) is bad input, one line naming the problem.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson

from target_kinesis.errors import InputError


def json_default(value: Any) -> Any:
    """Serialize the types singer-sdk hands sinks without changing their value.

    A Decimal (a line holding a number a double cannot represent is parsed with Decimal
    throughout) is written as orjson writes the same number read as a float (`2.50` as
    `2.5`, `1e3` as `1000.0`) when a double holds it exactly, so a number's form does not
    depend on what else its line holds; otherwise with the digits it was read with. NaN
    and infinities are not JSON, so they become null as JSON encoders do.
    """
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None
        as_float = float(value)
        if Decimal(repr(as_float)) == value:
            return as_float
        return orjson.Fragment(str(value).encode())
    return _other_default(value)


def canonical_default(value: Any) -> Any:
    """As `json_default`, but a Decimal keeps its text: messageIds derived from it must stay
    what earlier versions derived, so replays keep their ids."""
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value).encode()) if value.is_finite() else None
    return _other_default(value)


def _other_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"cannot serialize {type(value).__name__}")


#: orjson writes containers at most this deep (its limit, not ours to raise).
MAX_DEPTH = 254
JSON_OPTS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS


CANONICAL_OPTS = JSON_OPTS | orjson.OPT_SORT_KEYS
#: The same without OPT_NON_STR_KEYS, tried first: a value whose keys are all text (the usual
#: one, each event and each messageId) is written alike, a third faster; a key of any other
#: type raises, and the full options write it.
TEXT_KEYS_JSON_OPTS = JSON_OPTS & ~orjson.OPT_NON_STR_KEYS
TEXT_KEYS_CANONICAL_OPTS = CANONICAL_OPTS & ~orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> bytes:
    """Compact JSON for what is written to a stream (once per event: orjson first, directly)."""
    try:
        return orjson.dumps(value, default=json_default, option=TEXT_KEYS_JSON_OPTS)
    except orjson.JSONEncodeError:  # keys that are not text, what orjson cannot write alone, the error
        return _json(value, JSON_OPTS, json_default)


def canonical(value: Any) -> bytes:
    """Sorted keys, Decimals as read: the bytes a deterministic id is derived from (once per
    event, as `dumps`)."""
    try:
        return orjson.dumps(value, default=canonical_default, option=TEXT_KEYS_CANONICAL_OPTS)
    except orjson.JSONEncodeError:
        return _json(value, CANONICAL_OPTS, canonical_default)


def _json(value: Any, option: int, default: Callable[[Any], Any]) -> bytes:
    try:
        return orjson.dumps(value, default=default, option=option)
    except orjson.JSONEncodeError as exc:
        reason = str(exc)
    if "64-bit" not in reason:
        raise _unwritable(reason)
    try:
        return orjson.dumps(_exact_big_ints(value), default=default, option=option)
    except RecursionError:
        raise _unwritable("Recursion limit reached") from None
    except orjson.JSONEncodeError as exc:
        raise _unwritable(str(exc)) from None


def _unwritable(reason: str) -> InputError:
    """A record JSON output cannot hold, as the one line an operator reads."""
    if "ecursion" in reason:
        return InputError(f"record is nested more than {MAX_DEPTH} levels deep, deeper than JSON output allows")
    if "surrogate" in reason:
        return InputError("record holds a lone surrogate escape (\\ud800-\\udfff), which is not valid Unicode")
    return InputError(f"record cannot be written as JSON ({reason.split(chr(10), 1)[0]})")


def _exact_big_ints(value: Any) -> Any:
    """orjson refuses integers beyond 64 bits (and never asks `default`); write their digits."""
    if isinstance(value, dict):
        return {k: _exact_big_ints(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_exact_big_ints(v) for v in value]
    if type(value) is int and not -(2**63) <= value < 2**64:
        return orjson.Fragment(str(value).encode())
    return value
