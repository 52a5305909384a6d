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

from target_kinesis.aws.errors import ASSUME_ROLE_REFUSED, clock_skew


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
    #: For a throttle: what to do when it never clears (the stall line's advice).
    stall_hint: str = ""


_RETRY = ErrorRule(Action.RETRY)
_THROTTLE = ErrorRule(Action.RETRY, throttle=True)
_REFRESH = ErrorRule(Action.REFRESH, hint="the session token expired; credentials are refreshed")
_IAM = "check that the IAM policy grants {action} on this stream and that region is right"
_INVALID = (
    "AWS rejected the request as invalid: check max_batch_bytes and max_record_bytes against the "
    "stream's limits, the partition_key values and the stream name"
)
_KMS = "check that the role may use the stream's KMS key (kms:GenerateDataKey) and that the key is enabled"
#: A stream that accepts nothing for stall_timeout_seconds, refused for its shards' capacity.
STREAM_FULL = (
    "the stream is full: add shards or switch it to on-demand mode, lower rate_limit_percent of the "
    "other producers, or pack more events per record (aggregation)"
)
_NOT_AWS = "check endpoint_url, and any proxy or gateway between the target and AWS (HTTPS_PROXY, a VPC endpoint)"

#: AWS error code -> what we do. Codes are the same at request level and in the per-record
#: ErrorCode of a PutRecords / PutRecordBatch answer.
ERROR_RULES: dict[str, ErrorRule] = {
    # Throttling: the stream or account is over its limits for now.
    "ProvisionedThroughputExceededException": _THROTTLE,
    "ThrottlingException": _THROTTLE,
    "Throttling": _THROTTLE,
    "LimitExceededException": _THROTTLE,
    "KMSThrottlingException": ErrorRule(
        Action.RETRY,
        throttle=True,
        stall_hint=(
            "AWS KMS refused the stream's encryption requests for the KMS request quota of the key's account "
            "and region, which every user of KMS keys there shares (adding shards does not help): raise the quota "
            "'Cryptographic operations (symmetric) request rate' in Service Quotas, or find what else uses KMS "
            "that fast"
        ),
    ),
    "RequestLimitExceeded": _THROTTLE,
    "SlowDown": _THROTTLE,
    # HTTP 429 from a gateway or proxy in between (aws/clients.py names it).
    "TooManyRequests": _THROTTLE,
    # Transient faults on AWS's side.
    "InternalFailure": _RETRY,
    "InternalFailureException": _RETRY,
    "InternalServerError": _RETRY,
    # Also Firehose's per-record "Slow down." (its capacity code: aws/firehose.py).
    "ServiceUnavailableException": ErrorRule(
        Action.RETRY,
        stall_hint=(
            "the delivery stream is at its quota: ask for a higher Firehose quota (Service Quotas), lower "
            "rate_limit_percent or max_bytes_per_second of the other producers, or pack events (aggregation: lines)"
        ),
    ),
    "ServiceUnavailable": _RETRY,
    "RequestTimeout": _RETRY,
    "RequestTimeoutException": _RETRY,
    # An answer that is not AWS's (an HTML page with 200): maybe a passing fault in between.
    "NotAnAwsAnswer": ErrorRule(Action.RETRY, hint=_NOT_AWS),
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
    # STS refused to renew the role's session mid-run (its message says why and what to check).
    ASSUME_ROLE_REFUSED: ErrorRule(
        Action.FATAL, hint="no credentials to send with: re-run from the last STATE once STS accepts again"
    ),
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


def classify(code: str, http_status: int | None = None, message: str = "") -> ErrorRule:
    """The rule for an AWS error code; unknown codes are judged by the HTTP status.

    An unknown 5xx is AWS's fault and retried; an unknown 4xx is ours and stops the run,
    because retrying a request AWS considers wrong only delays the operator's fix; but an
    unknown 429 (a gateway's "slow down") is throttling. Unknown per-record codes (no status)
    are retried: the retry budget still bounds them. `message`: AWS's own text, where it tells
    the real cause apart (a signature refused for the machine's clock, not the key).
    """
    if code in _SIGNATURE_CODES and (skew := clock_skew(message)) is not None:
        return ErrorRule(Action.FATAL, hint=skew)
    rule = ERROR_RULES.get(code)
    if rule is not None:
        return rule
    if http_status == 429:
        return _THROTTLE
    if http_status is None or http_status >= 500:
        return _RETRY
    return ErrorRule(Action.FATAL, hint=f"AWS answered HTTP {http_status}")


#: Codes AWS answers a signature with, whose message may say the clock is off.
_SIGNATURE_CODES = frozenset({"InvalidSignatureException", "SignatureDoesNotMatch", "RequestExpired"})


def stall_hint(refused: dict[str, int]) -> str:
    """What to do about a destination that accepted nothing for stall_timeout_seconds: the
    advice of the code that refused most, else the stream is full."""
    for code, _ in sorted(refused.items(), key=lambda item: -item[1]):
        hint = ERROR_RULES.get(code, _THROTTLE).stall_hint
        if hint:
            return hint
        break
    return STREAM_FULL


def backoff_delays(base: float, cap: float) -> Iterator[float]:
    """Exponential backoff with full jitter (python-backoff's generators).

    Full jitter spreads retries of many concurrent batches so they do not hit a
    throttled shard again in lockstep.
    """
    waits = backoff.expo(factor=base, max_value=cap)
    next(waits)  # the generator's priming value
    for wait in waits:
        yield backoff.full_jitter(wait)
