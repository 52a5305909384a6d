"""Collections held off at start-up (`gc_tuning.collections_paused`)."""

from __future__ import annotations

import gc
import json
import subprocess
import sys

import pytest

from target_kinesis.gc_tuning import collections_paused


def test_collections_resume_after_the_block_and_what_it_made_is_frozen() -> None:
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    try:
        with collections_paused():
            assert not gc.isenabled()
            made = [[i] for i in range(1000)]
        assert gc.isenabled()
        assert gc.get_freeze_count() >= frozen + len(made)
    finally:
        gc.unfreeze()  # this test process's objects back to the collector


def test_collections_resume_when_the_block_raises_and_nothing_is_frozen() -> None:
    frozen = gc.get_freeze_count()
    with pytest.raises(ValueError), collections_paused():
        raise ValueError("no")
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


def test_someone_elses_pause_is_theirs_to_end() -> None:
    gc.disable()
    try:
        with collections_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_importing_the_target_leaves_collections_on() -> None:
    code = (
        "import gc, json; import target_kinesis.singer.target; "
        "print(json.dumps([gc.isenabled(), gc.get_freeze_count() > 10000]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == [True, True]
