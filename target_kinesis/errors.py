"""Exceptions whose message is the one line an operator reads.

Every error the target stops on is one of these, so the CLI can print a single line
(no traceback) and pick the exit code, and so nothing else has to know how to format.
"""

from __future__ import annotations


class TargetKinesisError(Exception):
    """Base: the message is complete, one line, and free of secret values."""


class ConfigError(TargetKinesisError):
    """The configuration breaks a rule of the SPEC; raised before any input is read."""


class InputError(TargetKinesisError):
    """A line of input cannot be processed (not JSON, record before schema, invalid, ...).

    Records read before it are still delivered and the last state read before it is
    emitted, so a re-run resumes exactly there.
    """


class PreflightError(TargetKinesisError):
    """A destination stream is missing, not active or not permitted (checked at start-up)."""


class DeliveryError(TargetKinesisError):
    """AWS did not acknowledge some records: retries ran out or the error cannot be retried.

    No state covering those records is emitted. `records` keeps counting while batches
    still in flight fail too, so the line printed at the end gives the run's total, the
    number the summary's `failed=` shows.
    """

    def __init__(self, where: str, records: int, detail: str) -> None:
        super().__init__(where, records, detail)
        self.where = where
        self.records = records
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.where}: {self.records} record(s) not delivered {self.detail}"


class NothingRoutedError(TargetKinesisError):
    """The run read records and routed none of them anywhere, and an `events` key names no
    stream the input declared: a naming mistake, not a success. No STATE was printed."""


class OutputClosedError(TargetKinesisError):
    """stdout is gone: no STATE can reach the tap's orchestrator any more."""


class MissingKeyProperties(InputError):
    """A record lacks one of its stream's key properties."""
