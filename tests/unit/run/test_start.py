"""Starting a run (`run/start.py`): the preflight describe and the shard map read together."""

from __future__ import annotations

import logging
import threading
import typing as t

import pytest

from target_kinesis.config.settings import Settings
from target_kinesis.delivery.dead_letters import DeadLetters, PutRetries
from target_kinesis.delivery.encoding import encoder_for
from target_kinesis.errors import PreflightError
from target_kinesis.run.start import start_writer

SHARDS = {"Shards": [{"ShardId": "shardId-000000000000", "HashKeyRange": {"StartingHashKey": "0"}}]}
SUMMARY = {"StreamDescriptionSummary": {"StreamStatus": "ACTIVE", "EncryptionType": "NONE", "OpenShardCount": 1}}


class _Kinesis:
    """Answers DescribeStreamSummary only once ListShards has been asked (as a slow AWS would
    while the other call is in flight); a start-up that made them one after the other would
    time out here."""

    def __init__(self, *, stream_exists: bool = True) -> None:
        self.listed = threading.Event()
        self.stream_exists = stream_exists

    def describe_stream_summary(self, **params: t.Any) -> dict:
        if not self.listed.wait(timeout=5):
            raise AssertionError("DescribeStreamSummary was not answered: ListShards was not asked meanwhile")
        if not self.stream_exists:
            from botocore.exceptions import ClientError

            error = {"Error": {"Code": "ResourceNotFoundException", "Message": "Stream x not found"}}
            raise ClientError(error, "DescribeStreamSummary")
        return SUMMARY

    def list_shards(self, **params: t.Any) -> dict:
        self.listed.set()
        return SHARDS


class _Clients:
    def __init__(self, kinesis: _Kinesis) -> None:
        self.kinesis = kinesis

    def client(self, service: str) -> t.Any:
        assert service == "kinesis"
        return self.kinesis

    def refresh_credentials(self) -> bool:
        return False


def _start(kinesis: _Kinesis, **config: t.Any) -> t.Any:
    settings = Settings.from_config({"stream_name": "x", "region": "us-east-1", **config})
    letters = DeadLetters(None, put_object=None, retries=PutRetries(0, 0.0, 0.0), refresh_credentials=lambda: False)
    return start_writer(
        settings, encoder_for(settings), t.cast(t.Any, _Clients(kinesis)), letters, logging.getLogger("t")
    )


def test_the_shard_map_is_read_while_the_describe_is_in_flight() -> None:
    writer = _start(_Kinesis())
    assert [m.version for m in writer.shard_maps.values()] == [1]


def test_a_failed_describe_stops_the_start_and_says_why() -> None:
    with pytest.raises(PreflightError, match=r"kinesis stream 'x' in region us-east-1 does not exist"):
        _start(_Kinesis(stream_exists=False))
