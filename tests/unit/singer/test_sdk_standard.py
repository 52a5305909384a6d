"""The Singer SDK's standard target tests, run against moto's in-process mock.

`runner.sync_all()` builds a new target each time, so the mock must outlive the
instances: one moto context per test class, one Kinesis stream for everything.
"""

from __future__ import annotations

import os

import boto3
import pytest
from moto import mock_aws
from singer_sdk.testing import get_target_test_class

from target_kinesis.singer.target import TargetKinesis

STREAM = "sdk-standard-tests"
CONFIG = {
    "stream_name": STREAM,
    "region": "us-east-1",
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "retry_base_delay": 0,
}

_StandardTests = get_target_test_class(TargetKinesis, config=CONFIG)


class TestTargetKinesisStandard(_StandardTests):  # type: ignore[misc, valid-type]
    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def kinesis_mock(cls):
        os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        with mock_aws():
            client = boto3.client("kinesis", region_name="us-east-1")
            client.create_stream(StreamName=STREAM, ShardCount=1)
            yield client
