"""Unit tests of target_kinesis.retry against SPEC.md "Batching, limits and retries".

Every row of ERROR_RULES is checked against an expectation written here from the SPEC
(and, for codes the SPEC does not name, from what AWS documents the code to mean), so a
row added or changed without a matching decision here fails.
"""

from __future__ import annotations

import itertools
import random

import backoff
import pytest

from target_kinesis.delivery.retry import ERROR_RULES, STREAM_FULL, Action, backoff_delays, classify, stall_hint

RETRY, REFRESH, FATAL = Action.RETRY, Action.REFRESH, Action.FATAL

# code -> (action, throttle, words the hint of a fatal rule must contain)
EXPECTED: dict[str, tuple[Action, bool, tuple[str, ...]]] = {
    # SPEC: throttling is retried with backoff (and counted as a throttle).
    "ProvisionedThroughputExceededException": (RETRY, True, ()),
    "ThrottlingException": (RETRY, True, ()),
    "LimitExceededException": (RETRY, True, ()),
    "KMSThrottlingException": (RETRY, True, ()),
    # Other AWS spellings of "slow down".
    "Throttling": (RETRY, True, ()),
    "RequestLimitExceeded": (RETRY, True, ()),
    "SlowDown": (RETRY, True, ()),
    # SPEC: HTTP 429 from anything in between is throttling.
    "TooManyRequests": (RETRY, True, ()),
    # SPEC: transient faults are retried (not throttles).
    "InternalFailure": (RETRY, False, ()),
    "ServiceUnavailableException": (RETRY, False, ()),
    "InternalFailureException": (RETRY, False, ()),
    "InternalServerError": (RETRY, False, ()),
    "ServiceUnavailable": (RETRY, False, ()),
    "RequestTimeout": (RETRY, False, ()),
    "RequestTimeoutException": (RETRY, False, ()),
    "ResourceInUseException": (RETRY, False, ()),  # Firehose stream being updated: transient
    # An answer that is not AWS's (a gateway's page): maybe passing, retried, bounded.
    "NotAnAwsAnswer": (RETRY, False, ()),
    # SPEC: connection errors and time-outs are retried.
    "ConnectionError": (RETRY, False, ()),
    "ReadTimeout": (RETRY, False, ()),
    "ConnectTimeout": (RETRY, False, ()),
    # SPEC: an expired token refreshes the credentials and retries.
    "ExpiredTokenException": (REFRESH, False, ()),
    "ExpiredToken": (REFRESH, False, ()),
    # A stale request signature (clock skew), not a stale token: retried, bounded.
    "RequestExpired": (RETRY, False, ()),
    # SPEC: cannot be retried -> stop, with a hint naming what to check.
    "ResourceNotFoundException": (FATAL, False, ("region", "stream")),
    "AccessDeniedException": (FATAL, False, ("IAM", "region")),
    "AccessDenied": (FATAL, False, ("IAM",)),
    "KMSAccessDeniedException": (FATAL, False, ("KMS",)),
    "KMSDisabledException": (FATAL, False, ("KMS", "enabled")),
    "KMSNotFoundException": (FATAL, False, ("KMS",)),
    "KMSInvalidStateException": (FATAL, False, ("KMS",)),
    "KMSOptInRequired": (FATAL, False, ("KMS",)),
    "KMSOptInRequiredException": (FATAL, False, ("KMS",)),
    "ValidationException": (FATAL, False, ("max_batch_bytes", "partition_key")),
    "InvalidArgumentException": (FATAL, False, ("max_batch_bytes", "partition_key")),
    "ParamValidationError": (FATAL, False, ("max_batch_bytes",)),
    "SerializationException": (FATAL, False, ()),
    # Credentials that are wrong (not expired): retrying cannot help.
    "UnrecognizedClientException": (FATAL, False, ("access key",)),
    "InvalidSignatureException": (FATAL, False, ("secret key",)),
    "IncompleteSignature": (FATAL, False, ("signature",)),
    "MissingAuthenticationToken": (FATAL, False, ("credentials",)),
    "NoCredentials": (FATAL, False, ("credentials",)),
    # STS refused to renew the role's session: nothing to sign with.
    "AssumeRoleRefused": (FATAL, False, ("credentials", "STATE")),
}

# The codes the SPEC / issue list names as fatal; each must tell the operator what to check.
NAMED_FATAL = [
    "ResourceNotFoundException",
    "AccessDeniedException",
    "KMSAccessDeniedException",
    "KMSDisabledException",
    "KMSNotFoundException",
    "KMSInvalidStateException",
    "KMSOptInRequired",
    "ValidationException",
    "InvalidArgumentException",
]

PER_RECORD_RETRIED = {
    "kinesis": ["ProvisionedThroughputExceededException", "InternalFailure"],
    "firehose": ["ServiceUnavailableException", "InternalFailure"],
}


def test_every_rule_has_an_expectation() -> None:
    assert set(ERROR_RULES) == set(EXPECTED), "a row of ERROR_RULES was added or removed: decide it here too"


@pytest.mark.parametrize("code", sorted(ERROR_RULES))
def test_error_rule(code: str) -> None:
    action, throttle, hint_words = EXPECTED[code]
    rule = ERROR_RULES[code]
    assert rule.action is action
    assert rule.throttle is throttle
    if action is FATAL:
        assert rule.hint, f"{code}: a fatal error needs a hint"
        for word in hint_words:
            assert word.lower() in rule.hint.lower(), f"{code}: hint {rule.hint!r} lacks {word!r}"
    # A known code wins over the HTTP status, at request level and per record.
    assert classify(code) is rule
    assert classify(code, 400) is rule
    assert classify(code, 500) is rule


@pytest.mark.parametrize("service", sorted(PER_RECORD_RETRIED))
def test_per_record_error_codes_are_retried(service: str) -> None:
    # Per-record ErrorCode values of PutRecords / PutRecordBatch come without an HTTP status.
    for code in PER_RECORD_RETRIED[service]:
        assert classify(code).action is RETRY


@pytest.mark.parametrize(
    "code",
    [
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "LimitExceededException",
        "KMSThrottlingException",
    ],
)
def test_request_level_throttles_are_retried_as_throttles(code: str) -> None:
    rule = classify(code, 400)  # AWS answers these with HTTP 400
    assert rule.action is RETRY
    assert rule.throttle


@pytest.mark.parametrize(
    "code",
    [*NAMED_FATAL],
)
def test_named_fatal_errors_have_a_hint_naming_what_to_check(code: str) -> None:
    rule = classify(code, 400)
    assert rule.action is FATAL
    assert "check" in rule.hint.lower(), rule.hint


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
def test_unknown_5xx_is_retried(status: int) -> None:
    rule = classify("SomethingNewException", status)
    assert rule.action is RETRY


@pytest.mark.parametrize("status", [400, 403, 404, 409, 413, 499])
def test_unknown_4xx_is_fatal_and_names_the_status(status: int) -> None:
    rule = classify("SomethingNewException", status)
    assert rule.action is FATAL
    assert str(status) in rule.hint


def test_unknown_per_record_code_is_retried() -> None:
    # No HTTP status: a per-record code AWS added later; the retry budget still bounds it.
    assert classify("SomeNewRecordError").action is RETRY


# -- backoff_delays -----------------------------------------------------------------------------------


def test_backoff_without_jitter_grows_exponentially_up_to_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backoff, "full_jitter", lambda value: value)
    delays = list(itertools.islice(backoff_delays(0.1, 5.0), 10))
    expected = [min(0.1 * 2**n, 5.0) for n in range(10)]
    assert delays == pytest.approx(expected)


def test_backoff_full_jitter_stays_in_zero_to_bound() -> None:
    base, cap = 0.05, 2.0
    for _ in range(200):
        delays = list(itertools.islice(backoff_delays(base, cap), 12))
        for n, delay in enumerate(delays):
            bound = min(base * 2**n, cap)
            assert 0 <= delay <= bound
            assert delay <= cap


def test_backoff_jitter_is_full_and_grows() -> None:
    rng_state = random.getstate()
    random.seed(99)
    try:
        samples = [list(itertools.islice(backoff_delays(0.1, 100.0), 6)) for _ in range(2000)]
    finally:
        random.setstate(rng_state)
    for n in range(6):
        column = [s[n] for s in samples]
        bound = 0.1 * 2**n
        # Full jitter: uniform over [0, bound] -> mean about bound/2, values near 0 and near bound.
        assert sum(column) / len(column) == pytest.approx(bound / 2, rel=0.1)
        assert min(column) < bound * 0.05
        assert max(column) > bound * 0.95
        assert len(set(column)) > 1000


def test_backoff_never_exceeds_the_cap_even_for_a_large_base() -> None:
    delays = list(itertools.islice(backoff_delays(30.0, 10.0), 5))
    assert all(0 <= d <= 10.0 for d in delays)


def test_backoff_is_endless() -> None:
    # The producer asks for as many delays as max_retries allows (up to 100).
    assert len(list(itertools.islice(backoff_delays(0.1, 1.0), 150))) == 150


# -- the real cause, where AWS's answer tells it ---------------------------------------------------------


def test_an_unknown_429_is_throttling() -> None:
    assert classify("429", 429).throttle
    assert classify("SomethingNewException", 429).action is RETRY


@pytest.mark.parametrize(
    ("message", "words"),
    [
        (
            "Signature expired: 20261207T010000Z is now earlier than 20261207T011000Z (20261207T011500Z - 5 min.)",
            "the machine's clock is 15 minute(s) behind AWS's",
        ),
        (
            "Signature not yet current: 20261207T014000Z is still later than 20261207T012000Z (20261207T011500Z + 5 min.)",
            "the machine's clock is 25 minute(s) ahead of AWS's",
        ),
    ],
)
def test_a_signature_refused_for_the_clock_names_the_clock(message: str, words: str) -> None:
    rule = classify("InvalidSignatureException", 400, message)
    assert rule.action is FATAL
    assert rule.hint.startswith(words) and "secret key" not in rule.hint
    assert (
        "secret key"
        in classify("InvalidSignatureException", 400, "The request signature we calculated does not match").hint
    )


def test_a_stall_is_explained_by_what_refused_most() -> None:
    assert stall_hint({"ProvisionedThroughputExceededException": 9}) == STREAM_FULL
    assert stall_hint({}) == STREAM_FULL
    assert "KMS request quota" in stall_hint({"KMSThrottlingException": 9, "ProvisionedThroughputExceededException": 1})
    assert "delivery stream is at its quota" in stall_hint({"ServiceUnavailableException": 3})
