"""Tests of the e2e test infrastructure itself (tests/support/).

The target's fault and delivery tests trust these helpers to tell the truth: a readback
that missed a shard, or a proxy that stored a record it reported as failed, would make
those tests pass on a broken target. So each helper is checked here against the servers.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import botocore.exceptions
import pytest
from botocore.config import Config

from tests.support import servers
from tests.support.fault_proxy import FaultProxy, failed_positions
from tests.support.fixtures import FaultProxyFactory
from tests.support.readback import (
    create_firehose_to_s3,
    create_kinesis_stream,
    read_firehose_s3,
    read_kinesis,
    split_lines,
    unique_name,
)
from tests.support.servers import (
    LocalServer,
    aws_env,
    boto_client,
    free_port,
    start_moto_server,
)

pytestmark = pytest.mark.e2e

ONE_SHOT = Config(retries={"total_max_attempts": 1}, read_timeout=0.5, connect_timeout=2)


def _refuses(host: str, port: int) -> bool:
    """Whether nothing accepts TCP connections on host:port."""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) != 0


def _records(n: int, tag: str = "r") -> list[dict[str, Any]]:
    return [{"Data": f"{tag}-{i}".encode(), "PartitionKey": f"pk-{i}"} for i in range(n)]


@pytest.fixture(params=["moto", "kinesalite"])
def kinesis_server(request: pytest.FixtureRequest) -> LocalServer:
    """Each Kinesis test runs against both local implementations."""
    return request.getfixturevalue(f"{request.param}_server")


# ------------------------------------------------------------------------- servers


def test_moto_server_starts_on_loopback_and_stops() -> None:
    server = start_moto_server()
    try:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.running
        client = boto_client("kinesis", server.url)
        assert client.list_streams()["StreamNames"] == []
        # Bound to 127.0.0.1 only: another loopback address finds nothing listening.
        assert _refuses("127.0.0.2", server.port)
    finally:
        server.stop()
    assert not server.running
    assert _refuses("127.0.0.1", server.port)
    assert not server.log_dir.exists()
    with pytest.raises(ProcessLookupError):
        os.killpg(server.process.pid, 0)  # the whole process group is gone
    server.stop()  # idempotent


def test_server_start_failure_shows_log_tail(tmp_path: Any) -> None:
    script = tmp_path / "boom.py"
    script.write_text("import sys; print('no such thing here'); sys.exit(3)\n")
    with pytest.raises(RuntimeError, match=r"(?s)exited with code 3.*no such thing here"):
        LocalServer.launch("boom", lambda port: [sys.executable, str(script), str(port)], timeout=5)


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_aws_env_for_subprocess(moto_server: LocalServer) -> None:
    base = {"PATH": os.environ["PATH"], "HTTPS_PROXY": "http://10.9.9.9:1", "AWS_PROFILE": "x"}
    env = aws_env(moto_server.url, base=base)
    assert "HTTPS_PROXY" not in env and "AWS_PROFILE" not in env
    assert env["AWS_ACCESS_KEY_ID"] == "testing" and env["AWS_REGION"] == "us-east-1"
    code = "import boto3; c = boto3.client('kinesis'); c.list_streams();print(c.meta.region_name, c.meta.endpoint_url)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:2] == ["us-east-1", moto_server.url]


def test_kinesalite_validates_like_aws(kinesalite_server: LocalServer) -> None:
    assert _refuses("127.0.0.2", kinesalite_server.port)
    client = boto_client("kinesis", kinesalite_server.url, ONE_SHOT)
    stream = unique_name("k")
    create_kinesis_stream(client, stream)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client.put_records(StreamName=stream, Records=_records(501))
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "500" in caught.value.response["Error"]["Message"]
    assert read_kinesis(client, stream) == []
    client.put_records(StreamName=stream, Records=_records(500))
    assert len(read_kinesis(client, stream)) == 500


# ------------------------------------------------------------------------ readback


def test_read_kinesis_reads_every_shard(kinesis_server: LocalServer) -> None:
    client = boto_client("kinesis", kinesis_server.url)
    stream = unique_name("s")
    create_kinesis_stream(client, stream, shards=3)
    sent = _records(300)
    for start in range(0, 300, 100):
        result = client.put_records(StreamName=stream, Records=sent[start : start + 100])
        assert result["FailedRecordCount"] == 0
    got = read_kinesis(client, stream)
    assert sorted(r.data for r in got) == sorted(r["Data"] for r in sent)
    assert {r.shard_id for r in got} == {f"shardId-00000000000{i}" for i in range(3)}
    # Within a shard, records come in put order (sequence numbers ascend).
    for shard in {r.shard_id for r in got}:
        in_shard = [int(r.data.split(b"-")[1]) for r in got if r.shard_id == shard]
        assert in_shard == sorted(in_shard)
    assert {r.partition_key for r in got if r.data == b"r-7"} == {"pk-7"}


def test_firehose_readback(moto_server: LocalServer) -> None:
    firehose = boto_client("firehose", moto_server.url)
    s3 = boto_client("s3", moto_server.url)
    name, bucket = unique_name("fh"), unique_name("bucket")
    create_firehose_to_s3(firehose, s3, name, bucket)
    batches = [[f"b{b}-r{i}\n".encode() for i in range(4)] for b in range(3)]
    for batch in batches:
        firehose.put_record_batch(DeliveryStreamName=name, Records=[{"Data": d} for d in batch])
    objects = read_firehose_s3(s3, bucket)
    # One object per batch, records concatenated as sent (key order is not write order).
    assert sorted(objects) == sorted(b"".join(batch) for batch in batches)
    assert sorted(split_lines(objects)) == sorted(d.rstrip(b"\n") for b in batches for d in b)
    assert split_lines([b"a\nb\n", b"c", b"\n"]) == [b"a", b"b", b"c", b""]


# ------------------------------------------------------------------- fault proxy


def test_proxy_passes_through(fault_proxy: FaultProxyFactory, kinesis_server: LocalServer) -> None:
    proxy = fault_proxy(kinesis_server.url)
    client = boto_client("kinesis", proxy.url)
    stream = unique_name("p")
    create_kinesis_stream(client, stream, shards=2)
    result = client.put_records(StreamName=stream, Records=_records(20))
    assert result["FailedRecordCount"] == 0
    assert len(read_kinesis(client, stream)) == 20
    calls = proxy.calls
    assert calls["kinesis:CreateStream"] == 1
    assert calls["kinesis:PutRecords"] == 1
    assert calls["kinesis:GetRecords"] >= 2
    assert proxy.records_forwarded == 20 and proxy.records_failed == 0
    assert proxy.errors == []
    put = proxy.requests_for("kinesis:PutRecords")[0]
    assert put.body == {"StreamName": stream}  # payloads not kept by default
    assert put.headers["X-Amz-Target"] == "Kinesis_20131202.PutRecords"


def test_proxy_record_failures_are_not_stored(fault_proxy: FaultProxyFactory, kinesis_server: LocalServer) -> None:
    proxy = fault_proxy(kinesis_server.url, seed=1234, record_failure_rate=0.5)
    client = boto_client("kinesis", proxy.url, ONE_SHOT)
    stream = unique_name("rf")
    create_kinesis_stream(client, stream)
    sent = _records(200)
    result = client.put_records(StreamName=stream, Records=sent)
    failed = failed_positions(result)
    assert 60 < len(failed) < 140 and result["FailedRecordCount"] == len(failed)
    assert len(result["Records"]) == 200
    for i, entry in enumerate(result["Records"]):
        if i in failed:
            assert entry["ErrorCode"] == "ProvisionedThroughputExceededException"
            assert "SequenceNumber" not in entry
        else:
            assert entry["ShardId"] == "shardId-000000000000" and entry["SequenceNumber"]
    stored = [r.data for r in read_kinesis(client, stream)]
    assert stored == [r["Data"] for i, r in enumerate(sent) if i not in failed]
    # The sequence numbers answered are those of the stored records.
    assert [e["SequenceNumber"] for e in result["Records"] if "SequenceNumber" in e] == [
        r.sequence_number for r in read_kinesis(client, stream)
    ]
    assert proxy.records_failed == len(failed)
    assert proxy.records_forwarded == 200 - len(failed)

    # Same seed, same failures: runs are repeatable.
    again = fault_proxy(kinesis_server.url, seed=1234, record_failure_rate=0.5)
    other = boto_client("kinesis", again.url, ONE_SHOT)
    stream2 = unique_name("rf")
    create_kinesis_stream(other, stream2)
    assert failed_positions(other.put_records(StreamName=stream2, Records=sent)) == failed

    # Everything fails: upstream is not called, nothing is stored; a custom code is used.
    proxy.configure(record_failure_rate=1.0, record_error_code="InternalFailure")
    before = proxy.records_forwarded
    result = client.put_records(StreamName=stream, Records=_records(5, "all"))
    assert result["FailedRecordCount"] == 5
    assert {e["ErrorCode"] for e in result["Records"]} == {"InternalFailure"}
    assert proxy.records_forwarded == before
    assert len(read_kinesis(client, stream)) == 200 - len(failed)


def test_proxy_record_failures_firehose(fault_proxy: FaultProxyFactory, moto_server: LocalServer) -> None:
    proxy = fault_proxy(seed=99, record_failure_rate=0.5)
    firehose = boto_client("firehose", proxy.url, ONE_SHOT)
    s3 = boto_client("s3", proxy.url)
    name, bucket = unique_name("fh"), unique_name("bucket")
    create_firehose_to_s3(firehose, s3, name, bucket)
    sent = [f"line-{i}\n".encode() for i in range(40)]
    result = firehose.put_record_batch(DeliveryStreamName=name, Records=[{"Data": d} for d in sent])
    failed = failed_positions(result)
    assert 0 < len(failed) < 40 and result["FailedPutCount"] == len(failed)
    assert result["Encrypted"] is False
    errors = [result["RequestResponses"][i] for i in failed]
    assert {e["ErrorCode"] for e in errors} == {"ServiceUnavailableException"}
    ok = [e for i, e in enumerate(result["RequestResponses"]) if i not in failed]
    assert all("RecordId" in e for e in ok)
    objects = read_firehose_s3(s3, bucket)
    assert objects == [b"".join(d for i, d in enumerate(sent) if i not in failed)]


CALL_FAULTS = [
    ("500", 500, "InternalFailure"),
    ("503", 503, "ServiceUnavailable"),
    ("throttle", 400, "ProvisionedThroughputExceededException"),
]


@pytest.mark.parametrize(("kind", "status", "code"), CALL_FAULTS)
def test_call_faults_http_errors(fault_proxy: FaultProxyFactory, kind: str, status: int, code: str) -> None:
    proxy = fault_proxy(call_failure_rate=1.0, call_failure_kinds=[kind])
    client = boto_client("kinesis", proxy.url, ONE_SHOT)
    stream = unique_name("cf")
    create_kinesis_stream(client, stream)  # Describe*/Create* are never faulted
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client.put_records(StreamName=stream, Records=_records(3))
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert proxy.faulted[kind] == 1
    assert read_kinesis(client, stream) == []  # GetRecords passes; nothing was stored


def test_call_fault_throttle_firehose_and_custom_code(fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy(call_failure_rate=1.0, call_failure_kinds=["throttle"])
    firehose = boto_client("firehose", proxy.url, ONE_SHOT)
    s3 = boto_client("s3", proxy.url)
    name, bucket = unique_name("fh"), unique_name("bucket")
    create_firehose_to_s3(firehose, s3, name, bucket)
    with pytest.raises(botocore.exceptions.ClientError, match="ThrottlingException"):
        firehose.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"x\n"}])
    proxy.configure(throttle_error_code="LimitExceededException")
    with pytest.raises(botocore.exceptions.ClientError, match="LimitExceededException"):
        firehose.put_record(DeliveryStreamName=name, Record={"Data": b"x\n"})
    assert read_firehose_s3(s3, bucket) == []


def test_call_fault_reset(fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy(call_failure_rate=1.0, call_failure_kinds=["reset"])
    client = boto_client("kinesis", proxy.url, ONE_SHOT)
    stream = unique_name("reset")
    create_kinesis_stream(client, stream)
    with pytest.raises(botocore.exceptions.ConnectionClosedError) as caught:
        client.put_records(StreamName=stream, Records=_records(3))
    # A real TCP reset (SO_LINGER 0), not an orderly close.
    assert "ConnectionResetError" in repr(caught.value.kwargs["error"])
    assert proxy.faulted["reset"] == 1
    assert read_kinesis(client, stream) == []  # the same client reconnects fine


def test_call_fault_timeout_after_store(fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy(call_failure_rate=1.0, call_failure_kinds=["timeout_after_store"], delay_seconds=5.0)
    client = boto_client("kinesis", proxy.url, ONE_SHOT)
    stream = unique_name("lost")
    create_kinesis_stream(client, stream)
    started = time.monotonic()
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        client.put_records(StreamName=stream, Records=_records(4))
    assert time.monotonic() - started < 4.5  # the client gave up, not the proxy
    assert [r.data for r in read_kinesis(client, stream)] == [r["Data"] for r in _records(4)]
    assert proxy.records_forwarded == 4 and proxy.faulted["timeout_after_store"] == 1


def test_fatal_error_and_token_expiry(fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy(fatal_error=(400, "KMSAccessDeniedException"))
    client = boto_client("kinesis", proxy.url, ONE_SHOT)
    stream = unique_name("fatal")
    create_kinesis_stream(client, stream)
    for _ in range(2):
        with pytest.raises(botocore.exceptions.ClientError, match="KMSAccessDeniedException"):
            client.put_records(StreamName=stream, Records=_records(1))
    assert proxy.faulted["fatal"] == 2

    proxy.clear_faults()
    proxy.configure(expire_token_once_every=3)
    proxy.reseed(0)  # restarts the Put-call count
    outcomes = []
    for _ in range(6):
        try:
            client.put_record(StreamName=stream, Data=b"t", PartitionKey="k")
            outcomes.append("ok")
        except botocore.exceptions.ClientError as exc:
            outcomes.append(exc.response["Error"]["Code"])
    assert outcomes == ["ok", "ok", "ExpiredTokenException"] * 2
    assert len(read_kinesis(client, stream)) == 4


def test_call_failure_rate_is_partial_and_repeatable(fault_proxy: FaultProxyFactory) -> None:
    def run(proxy: FaultProxy) -> list[str]:
        client = boto_client("kinesis", proxy.url, ONE_SHOT)
        stream = unique_name("rate")
        create_kinesis_stream(client, stream)
        out = []
        for _ in range(30):
            try:
                client.put_records(StreamName=stream, Records=_records(1))
                out.append("ok")
            except botocore.exceptions.ClientError as exc:
                out.append(exc.response["Error"]["Code"])
        return out

    kinds = ["500", "503", "throttle"]
    first = run(fault_proxy(seed=5, call_failure_rate=0.3, call_failure_kinds=kinds))
    second = run(fault_proxy(seed=5, call_failure_rate=0.3, call_failure_kinds=kinds))
    assert first == second
    assert 0 < first.count("ok") < 30


def test_request_log_records_assume_role_external_id(fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy(call_failure_rate=1.0)  # STS is never faulted
    sts = boto_client("sts", proxy.url, ONE_SHOT)
    role = "arn:aws:iam::123456789012:role/target-kinesis"
    creds = sts.assume_role(RoleArn=role, RoleSessionName="tk", ExternalId="ext-42")
    assert creds["Credentials"]["AccessKeyId"]
    (entry,) = proxy.requests_for("sts:AssumeRole")
    action, body, headers = entry
    assert action == "sts:AssumeRole"
    assert body["ExternalId"] == "ext-42" and body["RoleArn"] == role
    assert "/sts/aws4_request" in headers["Authorization"]
    assert proxy.actions() == {"sts:AssumeRole"}


def test_keep_bodies_and_stop_while_delayed(fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy(keep_bodies=True)
    client = boto_client("kinesis", proxy.url, ONE_SHOT)
    stream = unique_name("kb")
    create_kinesis_stream(client, stream)
    client.put_records(StreamName=stream, Records=_records(2))
    (put,) = proxy.requests_for("kinesis:PutRecords")
    assert [r["PartitionKey"] for r in put.body["Records"]] == ["pk-0", "pk-1"]

    proxy.configure(call_failure_rate=1.0, call_failure_kinds=["timeout_after_store"], delay_seconds=30)
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        client.put_records(StreamName=stream, Records=_records(1))
    started = time.monotonic()
    proxy.stop()  # wakes the delayed answer instead of waiting 30 s
    assert time.monotonic() - started < 5
    assert _refuses("127.0.0.1", int(proxy.url.rsplit(":", 1)[1]))


def test_fault_config_is_validated(fault_proxy: FaultProxyFactory) -> None:
    with pytest.raises(ValueError, match="call_failure_kinds"):
        FaultProxy("http://127.0.0.1:1", call_failure_kinds=["nope"])
    with pytest.raises(ValueError, match="record_failure_rate"):
        FaultProxy("http://127.0.0.1:1", record_failure_rate=1.5)
    proxy = fault_proxy()
    with pytest.raises(TypeError, match="unknown fault settings"):
        proxy.configure(record_fail_rate=0.1)


def test_proxy_reports_unreachable_upstream(fault_proxy: FaultProxyFactory) -> None:
    proxy = fault_proxy(f"http://127.0.0.1:{free_port()}")
    client = boto_client("kinesis", proxy.url, ONE_SHOT)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client.list_streams()
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 502
    assert proxy.errors and "upstream unreachable" in proxy.errors[0]


def test_proxy_concurrent_writers_with_record_failures(
    fault_proxy: FaultProxyFactory, kinesalite_server: LocalServer
) -> None:
    # kinesalite keeps every record under concurrent writers (moto does not), so any loss
    # or extra here is the proxy's: its counters and merge must hold up under threads.
    proxy = fault_proxy(kinesalite_server.url, seed=3, record_failure_rate=0.3)
    client = boto_client("kinesis", proxy.url, ONE_SHOT)
    stream = unique_name("conc")
    create_kinesis_stream(client, stream, shards=2)

    def writer(w: int) -> list[bytes]:
        delivered = []
        for call in range(5):
            sent = _records(50, f"w{w}c{call}")
            result = client.put_records(StreamName=stream, Records=sent)
            bad = set(failed_positions(result))
            delivered += [r["Data"] for i, r in enumerate(sent) if i not in bad]
        return delivered

    with ThreadPoolExecutor(max_workers=4) as pool:
        delivered = [d for part in pool.map(writer, range(4)) for d in part]
    stored = [r.data for r in read_kinesis(client, stream)]
    assert sorted(stored) == sorted(delivered)
    assert proxy.records_forwarded == len(delivered)
    assert proxy.records_failed == 4 * 5 * 50 - len(delivered) > 0
    assert proxy.calls["kinesis:PutRecords"] == 20
    assert proxy.errors == []


def test_missing_npm_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setattr(servers.shutil, "which", lambda _name: None)
    with pytest.raises(RuntimeError, match=r"npm is not installed.*npm ci"):
        servers.ensure_kinesalite_installed(tmp_path)


def test_aws_env_can_leave_the_endpoint_to_the_caller() -> None:
    env = aws_env("http://127.0.0.1:1", base={"AWS_ENDPOINT_URL": "http://x"}, set_endpoint=False)
    assert "AWS_ENDPOINT_URL" not in env
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
