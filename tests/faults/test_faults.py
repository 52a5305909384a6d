"""Delivery guarantees under faults, proven by reading back what landed.

A fault-injecting proxy of ours (tests/support/fault_proxy.py) sits between the real CLI
and moto's server: it fails a share of the records inside PutRecords / PutRecordBatch the
way AWS does (the failed ones are not stored), fails whole calls, resets connections,
answers after the client's read time-out, and expires tokens. Every test checks the
records in the streams, the STATE lines and the exit code.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import json
import os
import random
import signal
import subprocess
import termios
import threading
import time
import typing as t
from collections import Counter
from pathlib import Path

import pytest

from tests.support.readback import (
    create_firehose_to_s3,
    create_kinesis_stream,
    read_firehose_s3,
    read_kinesis,
    split_lines,
    unique_name,
)
from tests.support.servers import aws_env, boto_client
from tests.support.target_cli import TARGET, base_config, record, run_target, schema, state

pytestmark = pytest.mark.e2e

ORDERS = schema(
    "orders", {"id": {"type": "integer"}, "user_id": {"type": "string"}, "note": {"type": "string"}}, ["id"]
)
FAST_RETRY = {"retry_base_delay": 0.01, "retry_max_delay": 0.2}


def orders_input(count: int, *, state_every: int = 1000, start: int = 0) -> str:
    """Singer input of `count` orders with a STATE (the next offset) every `state_every`."""
    lines = [json.dumps(ORDERS)]
    for i in range(start, start + count):
        lines.append(json.dumps(record("orders", {"id": i, "user_id": f"user-{i % 97}", "note": "x" * 40})))
        if (i + 1) % state_every == 0:
            lines.append(json.dumps(state({"offset": i + 1})))
    lines.append(json.dumps(state({"offset": start + count})))
    return "\n".join(lines) + "\n"


def kinesis_ids(kinesis, stream) -> Counter:
    return Counter(json.loads(r.data)["properties"]["id"] for r in read_kinesis(kinesis, stream))


def firehose_ids(s3, bucket) -> Counter:
    return Counter(json.loads(line)["properties"]["id"] for line in split_lines(read_firehose_s3(s3, bucket)))


@pytest.fixture
def destinations(moto_server):
    kinesis = boto_client("kinesis", moto_server.url)
    firehose = boto_client("firehose", moto_server.url)
    s3 = boto_client("s3", moto_server.url)
    k_stream, f_stream, bucket = unique_name("faults-k"), unique_name("faults-f"), unique_name("faults-b")
    create_kinesis_stream(kinesis, k_stream, shards=2)
    create_firehose_to_s3(firehose, s3, f_stream, bucket)
    return {"kinesis": kinesis, "s3": s3, "k_stream": k_stream, "f_stream": f_stream, "bucket": bucket}


def both(destinations) -> list[dict]:
    return [
        {"event": "*", "stream": destinations["k_stream"], "service": "kinesis"},
        {"event": "*", "stream": destinations["f_stream"], "service": "firehose"},
    ]


@pytest.mark.slow
def test_record_and_call_failures_lose_nothing_and_duplicate_nothing(destinations, fault_proxy, tmp_path):
    """30% of records and 10% of calls fail, 5,000 records to Kinesis and Firehose at once.

    In batches of 125, so each destination still takes 40 first calls (and about as many
    again for the retries) as 20,000 records in batches of 500 did: the faults are drawn per
    call and per record, and a quarter of the records costs a quarter of the time."""
    proxy = fault_proxy(
        seed=20260,
        # Faults, not capacity: records refused for throughput go back in line and slow their shard
        # down (tests/e2e/test_capacity.py); a fault is retried in its batch.
        record_failure_rate=0.3,
        record_error_code="InternalFailure",
        call_failure_rate=0.1,
        call_failure_kinds=("500", "503", "throttle", "reset"),
    )
    count = 5_000
    config = base_config(
        proxy.url,
        destinations=both(destinations),
        max_batch_records=125,
        # moto's server loses records written to one stream over several connections at
        # once (its bug, measured); one call in flight per stream keeps the check ours.
        max_concurrent_requests=1,
        max_retries=30,
        mapping_processes=2,  # whatever this machine's CPUs: the path with the most moving parts
        **FAST_RETRY,
    )
    run = run_target(config, orders_input(count), endpoint=proxy.url, tmp_path=tmp_path, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.states[-1] == {"offset": count}

    expected = Counter(range(count))
    assert kinesis_ids(destinations["kinesis"], destinations["k_stream"]) == expected
    assert firehose_ids(destinations["s3"], destinations["bucket"]) == expected
    faults = proxy.stats()
    print(f"fault figures: {faults['records_failed']} records failed, calls faulted {faults['faulted']}")
    assert faults["records_failed"] > count * 0.3 * 2 * 0.8, faults
    assert sum(faults["faulted"].values()) > 0, faults
    k_summary = run.summary(f"kinesis:{destinations['k_stream']}")
    f_summary = run.summary(f"firehose:{destinations['f_stream']}")
    assert k_summary["records_sent"] == count and f_summary["records_sent"] == count
    assert k_summary["retried_records"] > 0 and f_summary["retried_records"] > 0
    assert k_summary["failed"] == 0 and f_summary["failed"] == 0


def test_response_lost_after_store_duplicates_with_same_message_id(destinations, fault_proxy, tmp_path):
    """The server stored the batch but the answer never came: the retry lands a duplicate,
    which carries the same messageId, and the summary counts the retry."""
    proxy = fault_proxy(seed=7, call_failure_rate=1.0, call_failure_kinds=("timeout_after_store",), delay_seconds=2.5)
    config = base_config(proxy.url, stream_name=destinations["k_stream"], read_timeout=1, max_retries=3, **FAST_RETRY)
    text = orders_input(20, state_every=100)
    proc_holder: dict = {}

    def heal_after_first_timeout() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not proxy.faulted.get("timeout_after_store"):
            time.sleep(0.05)
        proxy.clear_faults()
        proc_holder["healed"] = True

    healer = threading.Thread(target=heal_after_first_timeout, daemon=True)
    healer.start()
    run = run_target(config, text, endpoint=proxy.url, tmp_path=tmp_path)
    healer.join(timeout=5)
    assert proc_holder.get("healed")
    assert run.returncode == 0, run.stderr[-3000:]
    landed = [json.loads(r.data) for r in read_kinesis(destinations["kinesis"], destinations["k_stream"])]
    ids = Counter(e["properties"]["id"] for e in landed)
    assert set(ids) == set(range(20)), "every record landed"
    assert set(ids.values()) == {2}, "the lost answer made the whole batch land twice"
    by_message = Counter(e["messageId"] for e in landed)
    assert len(by_message) == 20 and set(by_message.values()) == {2}, "duplicates share a messageId"
    assert run.summary(f"kinesis:{destinations['k_stream']}")["retried_records"] >= 20


def test_retries_exhausted_stop_without_state_and_dead_letter(destinations, fault_proxy, tmp_path):
    proxy = fault_proxy(seed=1, record_failure_rate=1.0, record_error_code="InternalFailure")
    dead = tmp_path / "dead.jsonl"
    config = base_config(
        proxy.url, stream_name=destinations["k_stream"], max_retries=2, dead_letter_path=str(dead), **FAST_RETRY
    )
    text = orders_input(10, state_every=5)
    run = run_target(config, text, endpoint=proxy.url, tmp_path=tmp_path)
    assert run.returncode != 0
    (line,) = run.error_lines
    assert destinations["k_stream"] in line and "InternalFailure" in line
    assert "after 3 attempt(s)" in line
    assert run.states == [], "no STATE covers records that were not delivered"
    letters = [json.loads(x) for x in dead.read_text().splitlines()]
    assert sorted(letter["record"]["properties"]["id"] for letter in letters) == list(range(10))
    assert {letter["error_code"] for letter in letters} == {"InternalFailure"}
    assert {letter["attempts"] for letter in letters} == {3}
    assert {letter["reason"] for letter in letters} == {"undeliverable"}
    assert run.summary(f"kinesis:{destinations['k_stream']}")["failed"] == 10
    assert proxy.calls["kinesis:PutRecords"] == 3


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        ("AccessDeniedException", "IAM policy"),
        ("ResourceNotFoundException", "region"),
        ("KMSAccessDeniedException", "kms:GenerateDataKey"),
        ("KMSDisabledException", "KMS key"),
        ("KMSNotFoundException", "KMS key"),
        ("KMSInvalidStateException", "KMS key"),
        ("KMSOptInRequired", "KMS key"),
        ("ValidationException", "invalid"),
        ("InvalidArgumentException", "invalid"),
    ],
)
def test_fatal_errors_stop_at_once(destinations, fault_proxy, tmp_path, code, hint):
    proxy = fault_proxy(fatal_error=(400, code))
    config = base_config(proxy.url, stream_name=destinations["k_stream"], max_retries=5, **FAST_RETRY)
    run = run_target(config, orders_input(3, state_every=100), endpoint=proxy.url, tmp_path=tmp_path)
    assert run.returncode != 0
    (line,) = run.error_lines
    assert code in line and destinations["k_stream"] in line and hint in line
    assert proxy.calls["kinesis:PutRecords"] == 1, "no retry of an error retrying cannot fix"
    assert run.states == []


def _role_config(proxy, stream: str, **settings) -> dict:
    """An assumed-role config through the proxy, one call in flight (repeatable fault draws)."""
    return {
        "endpoint_url": proxy.url,
        "region": "us-east-1",
        "role_arn": "arn:aws:iam::123456789012:role/writer",
        "external_id": "ext-123",
        "stream_name": stream,
        "max_concurrent_requests": 1,
        **settings,
    }


def test_expired_token_refreshes_role_credentials(destinations, fault_proxy, tmp_path):
    proxy = fault_proxy(expire_token_once_every=2)
    config = _role_config(proxy, destinations["k_stream"], max_batch_records=10, **FAST_RETRY)
    run = run_target(config, orders_input(60, state_every=1000), endpoint=proxy.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert proxy.faulted["expired_token"] >= 2
    assert len(proxy.requests_for("sts:AssumeRole")) >= 1 + proxy.faulted["expired_token"]
    assert kinesis_ids(destinations["kinesis"], destinations["k_stream"]) == Counter(range(60))


@pytest.mark.slow
def test_role_credentials_refresh_before_they_expire(destinations, fault_proxy, tmp_path):
    """A run three times longer than its role session: the proxy makes each session last
    4 s and refuses calls signed with expired keys, as AWS does. No call may fail."""
    proxy = fault_proxy(session_seconds=4)
    config = _role_config(proxy, destinations["k_stream"], max_batch_records=20, state_flush_seconds=0)
    proc = _start_target(config, tmp_path, proxy.url)
    _feed(proc, orders_input(600, state_every=20), chunk_lines=21, pause=0.4, stop_at=None)  # ~12 s
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-3000:]
    assert proxy.faulted["expired_by_clock"] == 0, "a call went out with expired credentials"
    assert len(proxy.requests_for("sts:AssumeRole")) >= 3, "the session was renewed during the run"
    assert kinesis_ids(destinations["kinesis"], destinations["k_stream"]) == Counter(range(600))
    assert json.loads(out.decode().splitlines()[-1]) == {"offset": 600}


def test_expired_static_token_is_fatal_with_advice(destinations, fault_proxy, tmp_path):
    proxy = fault_proxy(expire_token_once_every=1)
    config = base_config(proxy.url, stream_name=destinations["k_stream"], **FAST_RETRY)
    run = run_target(config, orders_input(3), endpoint=proxy.url, tmp_path=tmp_path)
    assert run.returncode != 0
    (line,) = run.error_lines
    assert "ExpiredTokenException" in line and "role_arn" in line


def _start_target(config: dict, tmp_path: Path, endpoint: str) -> subprocess.Popen:
    path = tmp_path / f"cfg-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(config))
    return subprocess.Popen(
        [TARGET, "--config", str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=aws_env(endpoint),
    )


def _feed(proc: subprocess.Popen, text: str, chunk_lines: int, pause: float, stop_at: float | None) -> None:
    """Write input in chunks with pauses, like a tap that is still extracting."""
    lines = text.splitlines(keepends=True)
    started = time.monotonic()
    for i in range(0, len(lines), chunk_lines):
        if stop_at is not None and time.monotonic() - started > stop_at:
            return
        try:
            proc.stdin.write("".join(lines[i : i + chunk_lines]).encode())
            proc.stdin.flush()
        except (BrokenPipeError, ValueError):  # the target is gone, or stdin was closed
            return
        time.sleep(pause)


def _unread_bytes(pipe: t.IO[bytes]) -> int:
    """Bytes written to a pipe that its reader has not taken yet (FIONREAD works on either end)."""
    waiting = array.array("i", [0])
    fcntl.ioctl(pipe.fileno(), termios.FIONREAD, waiting)
    return waiting[0]


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as listing:
        return [int(child) for child in listing.read().split()]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][:1] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_covers_everything(moto_server, tmp_path):
    """Kill -9 at five random moments; re-run from the last emitted STATE each time."""
    kinesis = boto_client("kinesis", moto_server.url)
    rng = random.Random(4242)
    count = 3000
    killed_with_children = 0
    for attempt in range(5):
        stream = unique_name(f"kill{attempt}")
        create_kinesis_stream(kinesis, stream)
        config = base_config(
            moto_server.url,
            stream_name=stream,
            state_flush_seconds=0,
            max_concurrent_requests=1,
            mapping_processes=2,  # killed with the target, they must not deliver or linger
        )
        proc = _start_target(config, tmp_path, moto_server.url)
        kill_after = rng.uniform(0.5, 3.0)

        feeder = threading.Thread(
            target=_feed, args=(proc, orders_input(count, state_every=100), 50, 0.02, None), daemon=True
        )
        feeder.start()
        time.sleep(kill_after)
        children = _children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        feeder.join(timeout=5)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in children), "mapping processes outlived the killed target"
        killed_with_children += bool(children)
        states = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
        offset = states[-1]["offset"] if states else 0
        before = kinesis_ids(kinesis, stream)
        assert set(range(offset)) <= set(before), f"state {offset} emitted before its records landed"
        # Resume: the tap restarts from the bookmark.
        resumed = run_target(
            config,
            orders_input(count - offset, state_every=100, start=offset),
            endpoint=moto_server.url,
            tmp_path=tmp_path,
        )
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        assert set(kinesis_ids(kinesis, stream)) == set(range(count)), (
            f"attempt {attempt} (killed at {kill_after:.2f}s)"
        )
    assert killed_with_children, "no attempt was killed while its mapping processes ran"


@pytest.mark.parametrize("processes", [0, 2], ids=["one-process", "mapping-processes"])
def test_sigterm_drains_and_emits_state(moto_server, tmp_path, processes):
    kinesis = boto_client("kinesis", moto_server.url)
    stream = unique_name("term")
    create_kinesis_stream(kinesis, stream)
    # state_flush_seconds 60: no early checkpoint
    config = base_config(moto_server.url, stream_name=stream, mapping_processes=processes)
    proc = _start_target(config, tmp_path, moto_server.url)
    # Signal only once the target reads input (its preflight logged the destination), so a
    # slow machine cannot turn this into a test of a signal during start-up.
    err_lines: list[bytes] = []
    reading = threading.Event()

    def watch_stderr() -> None:
        for line in proc.stderr:
            err_lines.append(line)
            if b"is ACTIVE" in line:
                reading.set()

    watcher = threading.Thread(target=watch_stderr, daemon=True)
    watcher.start()
    assert reading.wait(timeout=60), b"".join(err_lines).decode()[-2000:]
    text = orders_input(500, state_every=100)
    lines = text.splitlines(keepends=True)
    proc.stdin.write("".join(lines[:300]).encode())  # schema, 299 records, 2 states ({"offset": 200})
    proc.stdin.flush()
    # Wait until the target has taken every byte out of the pipe (a slow machine gets the time it
    # needs), then give it a moment to go through the lines it read.
    deadline = time.monotonic() + 60
    while _unread_bytes(proc.stdin) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    proc.stdin.close()
    out = proc.stdout.read()
    proc.wait(timeout=60)
    watcher.join(timeout=10)
    assert proc.returncode == 0, b"".join(err_lines).decode()[-2000:]
    states = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    assert states == [{"offset": 200}]
    assert set(kinesis_ids(kinesis, stream)) >= set(range(200))


@pytest.mark.slow
def test_sigterm_while_input_flows_delivers_what_was_read(moto_server, tmp_path):
    """SIGTERM mid-stream with mapping processes busy: exit 0, and every STATE printed is covered.

    The signal is sent once half the input has been written, and the tap goes on offering the other
    half afterwards, slowly and without closing stdin: a target that ignored the signal would read
    it all, so the last STATE would be the final one. (Sending after a fixed sleep raced a fast
    machine, which had read all 20,000 records before the signal.)
    """
    kinesis = boto_client("kinesis", moto_server.url)
    stream = unique_name("termflow")
    create_kinesis_stream(kinesis, stream)
    config = base_config(moto_server.url, stream_name=stream, mapping_processes=2, max_concurrent_requests=1)
    proc = _start_target(config, tmp_path, moto_server.url)
    lines = orders_input(20_000, state_every=100).splitlines(keepends=True)
    half = len(lines) // 2
    half_written = threading.Event()
    signalled = threading.Event()

    def tap() -> None:
        _feed(proc, "".join(lines[:half]), 200, 0.005, None)
        half_written.set()
        signalled.wait(timeout=120)
        _feed(proc, "".join(lines[half:]), 100, 0.05, None)  # ~5 s more of input on offer
        with contextlib.suppress(BrokenPipeError, ValueError):
            proc.stdin.close()

    outputs: dict[str, bytes] = {}
    readers = [
        threading.Thread(target=lambda: outputs.__setitem__("out", proc.stdout.read()), daemon=True),
        threading.Thread(target=lambda: outputs.__setitem__("err", proc.stderr.read()), daemon=True),
    ]
    feeder = threading.Thread(target=tap, daemon=True)
    for thread in (*readers, feeder):
        thread.start()
    assert half_written.wait(timeout=120), "the target did not read the first half of its input"
    time.sleep(0.3)  # the mapping processes are at work on what was just written
    proc.send_signal(signal.SIGTERM)
    signalled.set()
    proc.wait(timeout=120)
    for thread in (*readers, feeder):
        thread.join(timeout=10)
    err = outputs.get("err", b"").decode()
    assert proc.returncode == 0, err[-2000:]
    assert "Termination signal" in err
    states = [json.loads(line) for line in outputs.get("out", b"").decode().splitlines() if line.strip()]
    assert states, "the STATE read before the signal is printed"
    landed = set(kinesis_ids(kinesis, stream))
    assert set(range(states[-1]["offset"])) <= landed, "a STATE printed before its records landed"
    assert states[-1]["offset"] < 20_000, "stopped early, as asked"


def test_state_flush_seconds_checkpoints_during_the_run(moto_server, tmp_path):
    kinesis = boto_client("kinesis", moto_server.url)
    stream = unique_name("flush")
    create_kinesis_stream(kinesis, stream)
    config = base_config(moto_server.url, stream_name=stream, state_flush_seconds=0)
    run = run_target(config, orders_input(300, state_every=100), endpoint=moto_server.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert [s["offset"] for s in run.states] == [100, 200, 300]
    default = run_target(
        {**config, "state_flush_seconds": 60},
        orders_input(300, state_every=100),
        endpoint=moto_server.url,
        tmp_path=tmp_path,
    )
    assert [s["offset"] for s in default.states] == [300], "without the setting, the SDK checkpoints at the end"


MOVES = 600


def _moves_per_key(kinesalite_server, fault_proxy, tmp_path, **settings) -> tuple[dict[str, list[int]], object]:
    """600 records over 13 keys through 30% record failures; each key's seqs as they landed.

    With per_key ordering a key has one record in flight at a time, so the run takes a round
    trip per record of a key: 46 records a key (and their retries) hold the point, which 2,000
    did at three times the cost."""
    kinesis = boto_client("kinesis", kinesalite_server.url)
    stream = unique_name("moves")
    create_kinesis_stream(kinesis, stream, shards=2)
    proxy = fault_proxy(upstream_url=kinesalite_server.url, seed=99, record_failure_rate=0.3)
    config = base_config(proxy.url, stream_name=stream, max_retries=40, **FAST_RETRY, **settings)
    lines = [json.dumps(schema("moves", {"seq": {"type": "integer"}, "user_id": {"type": "string"}}, ["seq"]))]
    lines += [json.dumps(record("moves", {"seq": seq, "user_id": f"u{seq % 13}"})) for seq in range(MOVES)]
    run = run_target(config, "\n".join(lines) + "\n", endpoint=proxy.url, tmp_path=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    per_key: dict[str, list[int]] = {}
    for rec in read_kinesis(kinesis, stream):  # shard order, then sequence number
        per_key.setdefault(rec.partition_key, []).append(json.loads(rec.data)["properties"]["seq"])
    assert sum(len(v) for v in per_key.values()) == MOVES
    return per_key, proxy


@pytest.mark.slow
@pytest.mark.parametrize("processes", [0, 2], ids=["one-process", "mapping-processes"])
def test_per_key_ordering_survives_partial_failures(kinesalite_server, fault_proxy, tmp_path, processes):
    per_key, proxy = _moves_per_key(
        kinesalite_server, fault_proxy, tmp_path, ordering="per_key", mapping_processes=processes
    )
    assert proxy.records_failed > 100
    for key, seqs in per_key.items():
        assert seqs == sorted(seqs), f"key {key} out of order"


def test_default_ordering_is_not_per_key_under_failures(kinesalite_server, fault_proxy, tmp_path):
    """The control for the test above: without per_key, the same faults reorder a key."""
    per_key, _ = _moves_per_key(kinesalite_server, fault_proxy, tmp_path)
    assert any(seqs != sorted(seqs) for seqs in per_key.values())
