"""Amazon S3, for dead letters that outlive the machine: what an ``s3://`` URL names, PutObject,
and the one line an operator reads when an object cannot be written.

The delivery layer decides what goes into an object and when; this module only knows where
an ``s3://bucket/prefix/`` URL points and how to store bytes there (with the run's own
clients: credentials, role and endpoint).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from target_kinesis.aws.errors import NOT_FOUND, AwsCallFailed, AwsError, error_code, explain

SCHEME = "s3://"
#: Bucket names as S3 accepts them, legacy us-east-1 names included (upper case, `_`): 3 to 255
#: characters, a letter or digit at each end. New buckets follow the stricter DNS rules, a subset.
_BUCKET = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{1,253})[A-Za-z0-9]")
#: `name://...`: a URL of some scheme, never a file path.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
#: Object keys are at most 1,024 bytes; the target adds about 50 to the prefix (time, run, number).
MAX_PREFIX_BYTES = 900
#: What dead-letter objects hold: JSON lines (NDJSON).
CONTENT_TYPE = "application/x-ndjson"


class S3UrlError(ValueError):
    """Why a value is not an ``s3://bucket/prefix/`` URL; the message never repeats the value."""


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key prefix (empty, or ending in ``/``): where objects are written."""

    bucket: str
    prefix: str

    @property
    def url(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.prefix}"

    def object_url(self, key: str) -> str:
        return f"{SCHEME}{self.bucket}/{key}"


def is_url(path: str) -> bool:
    """Whether `path` is a URL (``s3://`` or any other scheme) rather than a local file path."""
    return _URL.match(path) is not None


def parse_s3_url(url: str) -> S3Location:
    """``s3://bucket/prefix/`` as a location; S3UrlError for anything else.

    The prefix names a folder: ``s3://b/dead`` and ``s3://b/dead/`` both write under
    ``dead/``, as an operator who names a folder expects; ``s3://b`` writes at the bucket's top.
    """
    if url[: len(SCHEME)].lower() != SCHEME:
        scheme = url.split("://", 1)[0] if "://" in url else ""
        raise S3UrlError(
            f"is a {scheme}:// URL; only s3://bucket/prefix/ URLs and local file paths are supported"
            if scheme
            else "is not an s3://bucket/prefix/ URL"
        )
    bucket, _, prefix = url[len(SCHEME) :].partition("/")
    if not bucket:
        raise S3UrlError("is an s3:// URL without a bucket (expected s3://bucket/prefix/)")
    if not _BUCKET.fullmatch(bucket):
        raise S3UrlError(
            "does not name a valid S3 bucket (3 to 63 characters: lower-case letters, digits, '.' and '-', "
            "starting and ending with a letter or digit)"
        )
    if "?" in prefix or "#" in prefix or any(ord(c) < 32 or ord(c) == 127 for c in prefix):
        raise S3UrlError("has a prefix with '?', '#' or control characters; give a plain s3://bucket/prefix/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    if len(prefix.encode("utf-8")) > MAX_PREFIX_BYTES:
        raise S3UrlError(f"has a prefix longer than {MAX_PREFIX_BYTES} bytes (S3 keys are at most 1,024)")
    return S3Location(bucket, prefix)


def put_object(client: Any, bucket: str, key: str, body: bytes) -> None:
    """PutObject `body` at `key`; AwsCallFailed when AWS (or the way to it) refuses."""
    try:
        client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=CONTENT_TYPE)
    except (ClientError, BotoCoreError) as exc:
        raise AwsCallFailed(error_code(exc)) from None


def list_keys(client: Any, location: S3Location) -> list[str]:
    """Every object key under the location's prefix, in key order (ListObjectsV2, every page)."""
    keys: list[str] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=location.prefix):
            keys.extend(item["Key"] for item in page.get("Contents") or ())
    except (ClientError, BotoCoreError) as exc:
        raise AwsCallFailed(error_code(exc)) from None
    return sorted(keys)


def get_object(client: Any, bucket: str, key: str) -> bytes:
    """The bytes of one object; AwsCallFailed when AWS refuses."""
    try:
        return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    except (ClientError, BotoCoreError) as exc:
        raise AwsCallFailed(error_code(exc)) from None


def delete_object(client: Any, bucket: str, key: str) -> None:
    """DeleteObject; AwsCallFailed when AWS refuses."""
    try:
        client.delete_object(Bucket=bucket, Key=key)
    except (ClientError, BotoCoreError) as exc:
        raise AwsCallFailed(error_code(exc)) from None


def put_failure(error: AwsError, location: S3Location, key: str) -> str:
    """The one line about an object that could not be written: the bucket and key, the AWS error
    code, what to check. Never a credential: AWS's messages name principals and resources only."""
    target = location.object_url(key)
    where = f"s3 bucket '{location.bucket}' (writing {target})" if error.code in NOT_FOUND else target
    line = explain(
        error,
        where=where,
        verb="write",
        needed=f"s3:PutObject on arn:aws:s3:::{location.bucket}/{location.prefix}* is needed; "
        "target-kinesis-policy prints it",
        check="check the bucket of dead_letter_path, and that the credentials are for its account",
        decrypt="the bucket's default KMS key needs kms:GenerateDataKey for these credentials",
    )
    return line if error.code in line else f"{line} [{error.code}]"
