"""The two services by name, and the stream-name rule they share."""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from target_kinesis.aws.batch_api import Service, StreamInfo
from target_kinesis.aws.errors import AwsCallFailed, error_code
from target_kinesis.aws.firehose import FirehoseService
from target_kinesis.aws.kinesis import KinesisService

SERVICES: dict[str, Service] = {
    "kinesis": KinesisService(),
    "firehose": FirehoseService(),
}

#: Stream names of both services share this alphabet; only the length differs.
_STREAM_NAME_CHARS = re.compile(r"[A-Za-z0-9_.-]+")


def stream_name_problem(service: Service, name: str) -> str | None:
    """Why `name` cannot be a stream of `service`, or None when it can."""
    if not name:
        return "is empty"
    if len(name) > service.limits.max_stream_name:
        return f"is longer than {service.limits.max_stream_name} characters ({service.name} limit)"
    if not _STREAM_NAME_CHARS.fullmatch(name):
        return "may only contain letters, digits, '_', '.' and '-'"
    return None


def describe_stream(client: Any, service: str, stream: str) -> StreamInfo:
    """DescribeStreamSummary / DescribeDeliveryStream, for the preflight check and the policy
    tool alike; AwsCallFailed when AWS (or the way to it) refuses."""
    try:
        return SERVICES[service].describe(client, stream)
    except (ClientError, BotoCoreError) as exc:
        raise AwsCallFailed(error_code(exc)) from None
