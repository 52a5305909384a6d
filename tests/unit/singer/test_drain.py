"""A drain is bookkeeping for this target: the SDK's thread pool for draining sinks in
parallel (joblib) must not be started for it."""

from __future__ import annotations

import pytest
import singer_sdk.target_base

from target_kinesis.singer.target import TargetKinesis


def test_drain_does_not_start_the_sdks_thread_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pool(*args: object, **kwargs: object) -> None:
        raise AssertionError("the SDK drained sinks through joblib's thread pool")

    monkeypatch.setattr(singer_sdk.target_base, "Parallel", no_pool)
    target = TargetKinesis(config={"stream_name": "s"})
    target.drain_all()  # without max_parallelism 1, the SDK calls Parallel() here, sinks or not
    assert target.max_parallelism == 1
