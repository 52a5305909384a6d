"""Date-time values of records: ISO-8601 text for `timestamp`, Unix seconds for mParticle."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any


def to_iso(value: Any) -> str | None:
    """A date-time value from a record as an ISO-8601 string; None when there is none, or
    when it is not a date-time (text that is not ISO 8601, a boolean, an object).

    ISO text is kept exactly as the tap wrote it; numbers are Unix seconds, or milliseconds
    when larger than 1e11.
    """
    if type(value) is str:  # the usual case, first
        return value if is_iso_text(value) else None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        try:
            seconds = float(value)
            if seconds > 1e11:  # epoch milliseconds
                seconds /= 1000
            return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat().replace("+00:00", "Z")
        except (OverflowError, OSError, ValueError):  # beyond what a date can be, or NaN
            return None
    return None


def is_iso_text(text: str) -> bool:
    """Whether `text` is an ISO-8601 date or date-time (a trailing Z is UTC, on every Python)."""
    if not text:
        return False
    try:
        dt.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "Zz" else text)
    except ValueError:
        return False
    return True


def to_unix_seconds(value: Any) -> int | None:
    """Unix seconds of a date-time value, for mParticle's MembershipChangedTimestamp."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float, Decimal)):
        seconds = float(value)
        return int(seconds / 1000 if seconds > 1e11 else seconds)
    if isinstance(value, dt.datetime):
        moment = value
    else:
        try:
            moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return int(moment.timestamp())
