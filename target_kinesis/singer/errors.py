"""Our input errors, also as the Singer SDK's exception types where its test suite expects them."""

from __future__ import annotations

from singer_sdk.exceptions import MissingKeyPropertiesError, RecordsWithoutSchemaException

from target_kinesis.errors import InputError, MissingKeyProperties


class MissingKeyPropertiesInputError(MissingKeyProperties, MissingKeyPropertiesError):
    """A record lacks a key property; still the SDK's exception type, for its test suite."""


class RecordBeforeSchemaError(InputError, RecordsWithoutSchemaException):
    """A RECORD or BATCH arrived before its SCHEMA; still the SDK's exception type."""


def input_error(exc: BaseException, message: str) -> InputError:
    """An input error with `message`, of the SDK type the SDK's test suite looks for when `exc`
    was one (a missing key property, a record before its schema)."""
    if isinstance(exc, (MissingKeyProperties, MissingKeyPropertiesError)):
        return MissingKeyPropertiesInputError(message)
    if isinstance(exc, RecordsWithoutSchemaException):
        return RecordBeforeSchemaError(message)
    return InputError(message)
