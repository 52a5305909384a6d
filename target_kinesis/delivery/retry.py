"""Every retry rule in one place: which AWS errors are retried, and how long to wait.

Peers lose or duplicate data by treating a throttle as fatal or an access error as
transient. The table below is the single answer to "what do we do with error X"; the
producer only asks `classify()` and `backoff_delays()`; what an AWS error *is* (its code and
status, from any botocore exception) is `aws/errors.py`'s.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass

import backoff


class Action(enum.Enum):
    RETRY = "retry"
    """Send the same records again after a backoff."""
    REFRESH = "refresh"
    """Refresh the credentials, then retry."""
    FATAL = "fatal"
    """Stop the run: retrying cannot help and would only hide the problem."""


@dataclass(frozen=True)
class ErrorRule:
    action: Action
    throttle: bool = False
    hint: str = ""


_RETRY = ErrorRule(Action.RETRY)
_THROTTLE = ErrorRule(Action.RETRY, throttle=True)
_REFRESH = ErrorRule(Action.REFRESH, hint="the session token expired; credentials are refreshed")
_IAM = "check that the IAM policy grants {action} on this stream and that region is right"
_INVALID = (
    "AWS rejected the request as invalid: check max_batch_bytes and max_record_bytes against the "
    "stream's limits, the partition_key values and the stream name"
)
_KMS = "check that the role may use the stream's KMS key (kms:GenerateDataKey) and that the key is enabled"

#: AWS error code -> what we do. Codes are the same at request level and in the per-record
#: ErrorCode of a PutRecords / PutRecordBatch answer.
ERROR_RULES: dict[str, ErrorRule] = {
    # Throttling: the stream or account is over its limits for now.
    "ProvisionedThroughputExceededException": _THROTTLE,
    "ThrottlingException": _THROTTLE,
    "Throttling": _THROTTLE,
    "LimitExceededException": _THROTTLE,
    "KMSThrottlingException": _THROTTLE,
    "RequestLimitExceeded": _THROTTLE,
    "SlowDown": _THROTTLE,
    # Transient faults on AWS's side.
    "InternalFailure": _RETRY,
    "InternalFailureException": _RETRY,
    "InternalServerError": _RETRY,
    "ServiceUnavailableException": _RETRY,
    "ServiceUnavailable": _RETRY,
    "RequestTimeout": _RETRY,
    "RequestTimeoutException": _RETRY,
    # Firehose answers this while a delivery stream is being updated.
    "ResourceInUseException": _RETRY,
    # Connection-level failures (no HTTP answer at all); the request may or may not have
    # been stored, so a retry can duplicate: messageId lets consumers see it.
    "ConnectionError": _RETRY,
    "ReadTimeout": _RETRY,
    "ConnectTimeout": _RETRY,
    # Credentials.
    "ExpiredTokenException": _REFRESH,
    "ExpiredToken": _REFRESH,
    # The signature's time is too old: usually a machine clock that is off by minutes.
    "RequestExpired": ErrorRule(
        Action.RETRY, hint="check the machine's clock (request signatures expire after 5 minutes)"
    ),
    # Fatal: configuration or permission problems.
    "ResourceNotFoundException": ErrorRule(
        Action.FATAL, hint="the stream does not exist in this account and region (check region and the stream name)"
    ),
    "AccessDeniedException": ErrorRule(Action.FATAL, hint=_IAM),
    "AccessDenied": ErrorRule(Action.FATAL, hint=_IAM),
    "UnrecognizedClientException": ErrorRule(Action.FATAL, hint="the access key is not valid"),
    "InvalidSignatureException": ErrorRule(Action.FATAL, hint="the secret key does not match the access key"),
    "IncompleteSignature": ErrorRule(Action.FATAL, hint="the request signature is incomplete"),
    "MissingAuthenticationToken": ErrorRule(Action.FATAL, hint="no credentials were sent"),
    "NoCredentials": ErrorRule(
        Action.FATAL, hint="no AWS credentials found: set keys, aws_profile, role_arn or the AWS_* environment"
    ),
    "KMSAccessDeniedException": ErrorRule(Action.FATAL, hint=_KMS),
    "KMSDisabledException": ErrorRule(Action.FATAL, hint=_KMS),
    "KMSNotFoundException": ErrorRule(Action.FATAL, hint=_KMS),
    "KMSInvalidStateException": ErrorRule(Action.FATAL, hint=_KMS),
    "KMSOptInRequired": ErrorRule(Action.FATAL, hint=_KMS),
    "KMSOptInRequiredException": ErrorRule(Action.FATAL, hint=_KMS),
    "ValidationException": ErrorRule(Action.FATAL, hint=_INVALID),
    "InvalidArgumentException": ErrorRule(Action.FATAL, hint=_INVALID),
    "ParamValidationError": ErrorRule(Action.FATAL, hint=_INVALID),
    "SerializationException": ErrorRule(Action.FATAL, hint="AWS could not read the request"),
}


def classify(code: str, http_status: int | None = None) -> ErrorRule:
    """The rule for an AWS error code; unknown codes are judged by the HTTP status.

    An unknown 5xx is AWS's fault and retried; an unknown 4xx is ours and stops the run,
    because retrying a request AWS considers wrong only delays the operator's fix.
    Unknown per-record codes (no status) are retried: the retry budget still bounds them.
    """
    rule = ERROR_RULES.get(code)
    if rule is not None:
        return rule
    if http_status is None or http_status >= 500:
        return _RETRY
    return ErrorRule(Action.FATAL, hint=f"AWS answered HTTP {http_status}")


def backoff_delays(base: float, cap: float) -> Iterator[float]:
    """Exponential backoff with full jitter (python-backoff's generators).

    Full jitter spreads retries of many concurrent batches so they do not hit a
    throttled shard again in lockstep.
    """
    waits = backoff.expo(factor=base, max_value=cap)
    next(waits)  # the generator's priming value
    for wait in waits:
        yield backoff.full_jitter(wait)
