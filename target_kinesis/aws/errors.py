"""AWS errors as data: the code, message and HTTP status of any botocore failure, and the one
line an operator reads about a stream that cannot be described or read.

The retry rules (which codes are retried, which stop the run) are the delivery layer's
(`delivery/retry.py`); this module only says what happened, and never raises itself.
"""

from __future__ import annotations

import datetime as dt
import re
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

from target_kinesis.errors import PreflightError

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


class RoleRefused(PreflightError):
    """STS refused to assume the role: at start-up (a preflight error), or when renewing the
    session mid-run (then the producer's error, `ASSUME_ROLE_REFUSED`, names it)."""


#: The code a refused renewal of role credentials has in a producer's error line.
ASSUME_ROLE_REFUSED = "AssumeRoleRefused"
#: What AWS says of a request signed at a time too far from its own (SigV4 allows 5 minutes):
#: "Signature expired: 20261207T010000Z is now earlier than 20261207T011000Z (20261207T011500Z
#: - 5 min.)", or "Signature not yet current: A is still later than B (C + 5 min.)".
_SKEW = re.compile(r"Signature (?:expired|not yet current): (\d{8}T\d{6}Z) .*\((\d{8}T\d{6}Z) [-+] \d+ min\.\)")


def clock_skew(message: str) -> str | None:
    """How far the machine's clock is off, in words, when AWS's message says a signature was
    made at a time too far from AWS's own; None for any other message."""
    found = _SKEW.search(message)
    if found is None:
        return None
    signed, aws_now = (dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ") for stamp in found.groups())
    minutes = round((aws_now - signed).total_seconds() / 60)
    direction = "behind" if minutes >= 0 else "ahead of"
    return (
        f"the machine's clock is {abs(minutes)} minute(s) {direction} AWS's, which takes signatures at most 5 "
        "minutes off: set the clock right (NTP); the keys are not at fault"
    )


def error_code(exc: BaseException) -> AwsError:
    """What a botocore call's exception says, as data; anything else by its type name.

    Connection failures carry botocore's own text, which names the endpoint URL, on its first
    line only (a traceback must never reach an operator's line).
    """
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return AwsError(str(error.get("Code") or status or "Unknown"), str(error.get("Message", "")), status)
    if isinstance(exc, RoleRefused):
        return AwsError(ASSUME_ROLE_REFUSED, str(exc))
    if isinstance(exc, ReadTimeoutError):
        return AwsError("ReadTimeout", f"no answer from {_endpoint_of(exc)} within read_timeout")
    if isinstance(exc, ConnectTimeoutError):
        return AwsError("ConnectTimeout", f"could not connect to {_endpoint_of(exc)} within connect_timeout")
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


def _endpoint_of(exc: BotoCoreError) -> str:
    """The endpoint a botocore connection error names (its `endpoint_url`)."""
    return str(getattr(exc, "kwargs", {}).get("endpoint_url") or "the endpoint")


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
