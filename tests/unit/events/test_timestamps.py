"""Date-time values of records (events/timestamps.py)."""

from __future__ import annotations

import pytest

from target_kinesis.events.timestamps import to_iso


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-05T10:30:00Z", "2026-11-05T10:30:00Z"),
        ("2026-11-05t10:30:00z", "2026-11-05t10:30:00z"),
        ("2026-11-05", "2026-11-05"),
        ("yesterday", None),
        ("2026-13-45", None),
        ("", None),
        (True, None),
        ({"at": 1}, None),
        (1.7e9, "2023-11-14T22:13:20Z"),
        (1e300, None),
        (float("nan"), None),
    ],
)
def test_to_iso(value: object, expected: str | None) -> None:
    assert to_iso(value) == expected
