"""AWS errors as data (`aws/errors.py`): what any botocore failure says, and the operator's line.

Whether an error is retried is the retry table's (tests/unit/delivery/test_retry.py); here each
kind of failure is read into the code and status that table is looked up with.
"""

from __future__ import annotations

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from target_kinesis.aws.errors import AwsError, error_code, explain
from target_kinesis.delivery.retry import Action, classify

ENDPOINT = "https://kinesis.us-east-1.amazonaws.com"


def client_error(code: str | None, status: int, message: str = "") -> ClientError:
    error = {"Message": message}
    if code is not None:
        error["Code"] = code
    return ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutRecords")


def test_client_error() -> None:
    exc = client_error("ProvisionedThroughputExceededException", 400, "Rate exceeded for shard")
    assert error_code(exc) == AwsError("ProvisionedThroughputExceededException", "Rate exceeded for shard", 400)
    assert classify("ProvisionedThroughputExceededException", 400).throttle


def test_client_error_without_code_uses_the_status() -> None:
    error = error_code(client_error(None, 503))
    assert (error.code, error.status) == ("503", 503)
    assert classify(error.code, error.status).action is Action.RETRY


def test_fatal_client_error() -> None:
    error = error_code(client_error("ResourceNotFoundException", 400, "Stream s not found"))
    assert (error.code, error.status, error.message) == ("ResourceNotFoundException", 400, "Stream s not found")
    assert classify(error.code, error.status).action is Action.FATAL


def test_no_answer_at_all_has_no_status_and_is_retried() -> None:
    for exc, code in (
        (ReadTimeoutError(endpoint_url=ENDPOINT), "ReadTimeout"),
        (ConnectTimeoutError(endpoint_url=ENDPOINT), "ConnectTimeout"),
        (ConnectionClosedError(endpoint_url=ENDPOINT), "ConnectionError"),
        (EndpointConnectionError(endpoint_url=ENDPOINT), "ConnectionError"),
    ):
        error = error_code(exc)
        assert (error.code, error.status) == (code, None)
        assert classify(error.code, error.status).action is Action.RETRY


def test_connection_failures_keep_the_endpoint_on_one_line() -> None:
    error = error_code(EndpointConnectionError(endpoint_url=ENDPOINT))
    assert ENDPOINT in error.message and "\n" not in error.message


def test_missing_credentials_are_fatal() -> None:
    error = error_code(NoCredentialsError())
    rule = classify(error.code, error.status)
    assert rule.action is Action.FATAL
    assert "credentials" in rule.hint


def test_anything_else_is_named_by_its_type_and_never_raised() -> None:
    assert error_code(KeyError("a bug of ours")) == AwsError("KeyError", "'a bug of ours'")


WHERE = "kinesis stream 's' in region eu-west-1"


def test_explain_names_what_to_check_and_what_is_needed() -> None:
    needed = "kinesis:DescribeStreamSummary is needed"
    not_found = explain(AwsError("ResourceNotFoundException", "x"), where=WHERE, verb="describe", needed=needed)
    assert not_found == f"{WHERE} does not exist (check the name and region)"
    denied = explain(
        AwsError("AccessDeniedException", "User: arn:... is not authorized"),
        where=WHERE,
        verb="describe",
        needed=needed,
        alternative="set preflight_check to false",
    )
    assert denied == f"not permitted to describe {WHERE} ({needed}; or set preflight_check to false)"


def test_explain_other_errors_on_one_line() -> None:
    line = explain(AwsError("InternalFailure", "try\nagain"), where=WHERE, verb="read", needed="x")
    assert line == f"cannot read {WHERE}: InternalFailure: try again"


def test_explain_kms_only_when_reading_encrypted_data() -> None:
    error = AwsError("KMSAccessDeniedException", "no")
    assert "kms:Decrypt" in explain(error, where=WHERE, verb="read", needed="x", decrypt="kms:Decrypt is needed")
    assert explain(error, where=WHERE, verb="describe", needed="x").startswith(f"cannot describe {WHERE}")


def test_explain_without_a_region_to_check() -> None:
    line = explain(AwsError("NoSuchBucket", ""), where="bucket 'b'", verb="read", needed="x", check=None)
    assert line == "bucket 'b' does not exist"


def test_time_outs_name_the_endpoint() -> None:
    assert (
        error_code(ReadTimeoutError(endpoint_url=ENDPOINT)).message == f"no answer from {ENDPOINT} within read_timeout"
    )
    assert (
        error_code(ConnectTimeoutError(endpoint_url=ENDPOINT)).message
        == f"could not connect to {ENDPOINT} within connect_timeout"
    )
