"""AWS errors as data: the code, message and HTTP status of any botocore failure, and the one
line an operator reads about a stream that cannot be described or read.

The retry rules (which codes are retried, which stop the run) are the delivery layer's
(`delivery/retry.py`); this module only says what happened, and never raises itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    HTTPClientError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

NOT_FOUND = frozenset({"ResourceNotFoundException", "NoSuchBucket", "404"})
ACCESS_DENIED = frozenset({"AccessDeniedException", "AccessDenied", "403"})


@dataclass(frozen=True)
class AwsError:
    code: str
    message: str
    #: The HTTP status of AWS's answer; None when no answer came (connection, time-out).
    status: int | None = None


class AwsCallFailed(Exception):
    """An AWS call failed; `error` says how. For callers above the AWS layer, which never
    handle botocore's exceptions themselves."""

    def __init__(self, error: AwsError) -> None:
        super().__init__(f"{error.code}: {error.message}")
        self.error = error


def error_code(exc: BaseException) -> AwsError:
    """What a botocore call's exception says, as data; anything else by its type name.

    Connection failures carry botocore's own text, which names the endpoint URL, on its first
    line only (a traceback must never reach an operator's line).
    """
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return AwsError(str(error.get("Code") or status or "Unknown"), str(error.get("Message", "")), status)
    if isinstance(exc, ReadTimeoutError):
        return AwsError("ReadTimeout", "no answer within read_timeout")
    if isinstance(exc, ConnectTimeoutError):
        return AwsError("ConnectTimeout", "could not connect within connect_timeout")
    if isinstance(exc, (HTTPClientError, BotoConnectionError)):
        # Resets, refused connections, DNS and TLS failures: no answer from AWS at all.
        return AwsError("ConnectionError", _first_line(exc))
    if isinstance(exc, NoCredentialsError):
        return AwsError("NoCredentials", "unable to locate credentials")
    if isinstance(exc, ParamValidationError):
        return AwsError("ParamValidationError", " ".join(str(exc).split()))
    if isinstance(exc, BotoCoreError):
        return AwsError(type(exc).__name__, _first_line(exc))
    return AwsError(type(exc).__name__, _first_line(exc))


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def explain(
    error: AwsError,
    *,
    where: str,
    verb: str,
    needed: str,
    alternative: str | None = None,
    check: str | None = "check the name and region",
    decrypt: str | None = None,
) -> str:
    """The one line an operator reads when `where` cannot be described or read.

    `needed`: the permission sentence ("kinesis:DescribeStreamSummary is needed");
    `alternative`: what else would do ("set preflight_check to false"); `check`: what to
    check when it does not exist; `decrypt`: the KMS permission when reading encrypted data.
    """
    otherwise = f"; or {alternative}" if alternative else ""
    if error.code in NOT_FOUND:
        hint = f" ({check}{otherwise})" if check else ""
        return f"{where} does not exist{hint}"
    if error.code in ACCESS_DENIED:
        return f"not permitted to {verb} {where} ({needed}{otherwise})"
    if decrypt and error.code.startswith("KMS"):
        return f"cannot decrypt {where}: {error.code} ({decrypt})"
    return " ".join(f"cannot {verb} {where}: {error.code}: {error.message}".split())
