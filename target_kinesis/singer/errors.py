"""Our input errors, also as the Singer SDK's exception types where its test suite expects them."""

from __future__ import annotations

from singer_sdk.exceptions import InvalidRecord, MissingKeyPropertiesError, RecordsWithoutSchemaException
from singer_sdk.singerlib.exceptions import InvalidInputLine

from target_kinesis.errors import InputError, MissingKeyProperties

#: What bad input raises, ours and the SDK's: the run delivers what came before it, then
#: stops on one line (`bad_input_line`).
BAD_INPUT = (InputError, InvalidInputLine, RecordsWithoutSchemaException, InvalidRecord, MissingKeyPropertiesError)


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


def bad_input_line(exc: BaseException, line: int) -> InputError:
    """Bad input (one of `BAD_INPUT`) as one line naming input line `line` (0: none), of the
    SDK type it was."""
    message = str(exc.args[0]) if exc.args else type(exc).__name__
    message = message.splitlines()[0] if message else type(exc).__name__
    if isinstance(exc, RecordsWithoutSchemaException):
        message = message.split(" Check that")[0]
    if line and not message.startswith("input line"):
        message = f"input line {line}: {message}"
    return input_error(exc, message)
