"""The one-line errors (errors.py)."""

from __future__ import annotations

from target_kinesis.errors import DeliveryError


def test_delivery_error_counts_what_failed_later() -> None:
    error = DeliveryError("kinesis stream 's'", 500, "after 1 attempt(s): X (y)")
    error.records = 1500
    assert str(error) == "kinesis stream 's': 1500 record(s) not delivered after 1 attempt(s): X (y)"
