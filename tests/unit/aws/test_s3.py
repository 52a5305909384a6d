"""S3 for dead letters (`aws/s3.py`): what an s3:// URL names, PutObject, and the operator's line."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from target_kinesis.aws.errors import AwsCallFailed, AwsError
from target_kinesis.aws.s3 import CONTENT_TYPE, S3Location, S3UrlError, is_url, parse_s3_url, put_failure, put_object


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://dead-letters/target/", "dead-letters", "target/"),
        ("s3://dead-letters/target", "dead-letters", "target/"),  # a folder, as the operator meant
        ("s3://dead-letters/a/b/c/", "dead-letters", "a/b/c/"),
        ("s3://dead-letters/", "dead-letters", ""),
        ("s3://dead-letters", "dead-letters", ""),
        ("S3://dead.letters.example/x/", "dead.letters.example", "x/"),
        ("s3://Legacy_Bucket/x/", "Legacy_Bucket", "x/"),  # us-east-1 names from before 2018
    ],
)
def test_an_s3_url_is_a_bucket_and_a_folder(url: str, bucket: str, prefix: str) -> None:
    location = parse_s3_url(url)
    assert location == S3Location(bucket, prefix)
    assert location.url == f"s3://{bucket}/{prefix}"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("s3://", "without a bucket"),
        ("s3:///dead/", "without a bucket"),
        ("s3://ab/dead/", "valid S3 bucket"),
        ("s3://-bucket-/dead/", "valid S3 bucket"),
        ("s3://user:pass@bucket/dead/", "valid S3 bucket"),
        ("s3://bucket/dead?versionId=1", "'?'"),
        ("s3://bucket/dead\n/", "control characters"),
        (f"s3://bucket/{'p' * 901}", "longer than 900 bytes"),
        ("gs://bucket/dead/", "is a gs:// URL"),
        ("https://bucket.s3.amazonaws.com/dead/", "is a https:// URL"),
        ("/var/dead.jsonl", "not an s3://"),
    ],
)
def test_what_is_not_an_s3_url_says_why_without_repeating_it(url: str, reason: str) -> None:
    with pytest.raises(S3UrlError) as raised:
        parse_s3_url(url)
    assert reason in str(raised.value)
    assert "pass" not in str(raised.value)


@pytest.mark.parametrize(
    ("path", "url"),
    [
        ("s3://b/x", True),
        ("gs://b/x", True),
        ("/tmp/dead.jsonl", False),
        ("dead.jsonl", False),
        ("letters/s3:/x", False),
        ("C:\\dead.jsonl", False),
    ],
)
def test_urls_are_told_from_file_paths(path: str, url: bool) -> None:
    assert is_url(path) is url


def _s3_client() -> object:
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client("s3")


def test_put_object_stores_the_body_at_the_key() -> None:
    client = _s3_client()
    with Stubber(client) as stub:
        stub.add_response(
            "put_object",
            {"ETag": '"e"'},
            {"Bucket": "dlq", "Key": "x/a.jsonl", "Body": b'{"a":1}\n', "ContentType": CONTENT_TYPE},
        )
        put_object(client, "dlq", "x/a.jsonl", b'{"a":1}\n')
        stub.assert_no_pending_responses()


def test_put_object_failures_are_aws_errors() -> None:
    client = _s3_client()
    with Stubber(client) as stub:
        stub.add_client_error("put_object", "NoSuchBucket", "The specified bucket does not exist", 404)
        with pytest.raises(AwsCallFailed) as raised:
            put_object(client, "dlq", "x/a.jsonl", b"{}\n")
    assert raised.value.error == AwsError("NoSuchBucket", "The specified bucket does not exist", 404)


LOCATION = S3Location("dlq", "target/")
KEY = "target/2026-11-30T04-12-00Z-1a2b3c4d-000001.jsonl"


def test_a_missing_bucket_line_names_the_bucket_the_key_and_the_code() -> None:
    line = put_failure(AwsError("NoSuchBucket", "The specified bucket does not exist", 404), LOCATION, KEY)
    assert f"s3 bucket 'dlq' (writing s3://dlq/{KEY}) does not exist" in line
    assert "dead_letter_path" in line and "[NoSuchBucket]" in line


def test_a_denied_write_names_the_permission_the_policy_tool_grants() -> None:
    line = put_failure(AwsError("AccessDenied", "Access Denied", 403), LOCATION, KEY)
    assert line.startswith(f"not permitted to write s3://dlq/{KEY}")
    assert "s3:PutObject on arn:aws:s3:::dlq/target/*" in line and "target-kinesis-policy" in line
    assert "[AccessDenied]" in line


def test_any_other_failure_carries_code_and_message_once() -> None:
    line = put_failure(AwsError("SlowDown", "Please reduce your request rate.", 503), LOCATION, KEY)
    assert line == f"cannot write s3://dlq/{KEY}: SlowDown: Please reduce your request rate."
