"""Fatal lines that name the real cause, through the real CLI, with the answers injected by the
fault proxy (tests/support/fault_proxy.py) in front of moto's server.

An operator fixes what the line names: a skewed clock blamed on the secret key, a KMS quota
blamed on the shard count or a gateway's HTML page reported as a record missing from AWS's
answer each send them to fix the wrong thing.
"""

from __future__ import annotations

import json

import pytest

from tests.support.readback import create_kinesis_stream, read_kinesis, unique_name
from tests.support.servers import boto_client
from tests.support.target_cli import base_config, record, run_target, schema, singer_lines, state

pytestmark = pytest.mark.e2e

USERS = schema("users", {"id": {"type": "integer"}, "user_id": {"type": "string"}}, ["id"])
HTML = "text/html; charset=utf-8"
PAGE = "<html><head><title>Too Many Requests</title></head><body><h1>429</h1>nginx</body></html>"


def _input(n: int = 5) -> str:
    return singer_lines(USERS, *(record("users", {"id": i, "user_id": f"u{i}"}) for i in range(n)), state({"at": n}))


def _stream(moto_server) -> tuple[object, str]:
    kinesis = boto_client("kinesis", moto_server.url)
    stream = unique_name("cause")
    create_kinesis_stream(kinesis, stream)
    return kinesis, stream


def _one_error(run) -> str:
    errors = run.error_lines
    assert len(errors) == 1, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    return errors[0]


def test_http_429_with_an_html_page_is_retried_as_throttling(moto_server, fault_proxy, tmp_path):
    kinesis, stream = _stream(moto_server)
    proxy = fault_proxy(put_answer=(429, HTML, PAGE), put_answer_calls=3)
    config = base_config(proxy.url, stream_name=stream, max_retries=0)  # a throttle uses up no retry
    run = run_target(config, _input(), endpoint=proxy.url, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.states == [{"at": 5}]
    assert len(read_kinesis(kinesis, stream)) == 5
    assert proxy.faulted["canned"] == 3
    assert run.summary(f"kinesis:{stream}")["throttles"] >= 1


def test_a_skewed_clock_is_named_as_the_clock_not_the_key(moto_server, fault_proxy, tmp_path):
    _, stream = _stream(moto_server)
    message = "Signature expired: 20261207T010000Z is now earlier than 20261207T011000Z (20261207T011500Z - 5 min.)"
    answer = json.dumps({"__type": "InvalidSignatureException", "message": message})
    proxy = fault_proxy(put_answer=(400, "application/x-amz-json-1.1", answer))
    run = run_target(base_config(proxy.url, stream_name=stream), _input(), endpoint=proxy.url, tmp_path=tmp_path)
    assert run.returncode != 0
    line = _one_error(run)
    print("LINE:", line.split("| target-kinesis: ", 1)[-1])
    print("WARN:", [w for w in run.stderr.splitlines() if "WARNING" in w])
    assert "the machine's clock is 15 minute(s) behind AWS's" in line, line
    assert "secret key" not in line
    assert run.states == []


def test_an_html_page_answered_with_200_names_the_endpoint(moto_server, fault_proxy, tmp_path):
    _, stream = _stream(moto_server)
    proxy = fault_proxy(put_answer=(200, HTML, "<html><body>Welcome to our portal</body></html>"))
    config = base_config(proxy.url, stream_name=stream, max_retries=1, retry_base_delay=0.01)
    run = run_target(config, _input(), endpoint=proxy.url, tmp_path=tmp_path)
    assert run.returncode != 0
    line = _one_error(run)
    print("LINE:", line.split("| target-kinesis: ", 1)[-1])
    print("WARN:", [w for w in run.stderr.splitlines() if "WARNING" in w])
    assert f"{proxy.url} answered HTTP 200 with text/html, not as AWS does" in line, line
    assert "record missing from the response" not in line
    assert run.states == []


def test_kms_throttling_that_never_clears_points_at_the_kms_quota(moto_server, fault_proxy, tmp_path):
    _, stream = _stream(moto_server)
    answer = json.dumps({"__type": "KMSThrottlingException", "message": "Rate exceeded for KMS key"})
    proxy = fault_proxy(put_answer=(400, "application/x-amz-json-1.1", answer))
    config = base_config(proxy.url, stream_name=stream, stall_timeout_seconds=1.5)
    run = run_target(config, _input(), endpoint=proxy.url, tmp_path=tmp_path)
    assert run.returncode != 0
    line = _one_error(run)
    print("LINE:", line.split("| target-kinesis: ", 1)[-1])
    print("WARN:", [w for w in run.stderr.splitlines() if "WARNING" in w])
    assert "KMSThrottlingException" in line and "KMS request quota" in line, line
    assert "add shards" not in line


def test_sts_refusing_a_refresh_mid_run_is_one_line_naming_the_role(moto_server, fault_proxy, tmp_path):
    """Sessions of 2 s against a renewal margin of minutes: the first Put call renews the
    credentials, and STS refuses every renewal after the first AssumeRole."""
    _, stream = _stream(moto_server)
    role = "arn:aws:iam::123456789012:role/writer"
    proxy = fault_proxy(
        session_seconds=2,
        sts_error=(403, "AccessDenied", "User is not authorized to perform: sts:AssumeRole"),
        sts_error_after=1,
    )
    config = base_config(proxy.url, stream_name=stream, role_arn=role, role_session_duration_seconds=900)
    run = run_target(config, _input(), endpoint=proxy.url, tmp_path=tmp_path)
    assert run.returncode != 0
    assert proxy.faulted["sts_error"] >= 1
    line = _one_error(run)
    print("LINE:", line.split("| target-kinesis: ", 1)[-1])
    print("WARN:", [w for w in run.stderr.splitlines() if "WARNING" in w])
    assert f"could not renew the credentials of role {role}: AccessDenied" in line, line
    assert "unexpected error" not in line
    assert run.states == []


def test_sts_refusing_a_renewal_after_expired_token_fails_the_batch_naming_the_role(moto_server, fault_proxy, tmp_path):
    """The run is under way: AWS answers ExpiredTokenException, the target renews the role's
    session, and STS refuses: the records are not delivered, and the line says why."""
    _, stream = _stream(moto_server)
    role = "arn:aws:iam::123456789012:role/writer"
    proxy = fault_proxy(
        expire_token_once_every=1,
        sts_error=(403, "AccessDenied", "User is not authorized to perform: sts:AssumeRole"),
        sts_error_after=1,
    )
    config = base_config(proxy.url, stream_name=stream, role_arn=role)
    run = run_target(config, _input(), endpoint=proxy.url, tmp_path=tmp_path)
    assert run.returncode != 0
    line = _one_error(run)
    assert (
        f"5 record(s) not delivered after 1 attempt(s): AssumeRoleRefused: could not renew the credentials of role {role}: AccessDenied"
        in line
    ), line
    assert "unexpected error" not in line
    assert not [w for w in run.stderr.splitlines() if "botocore" in w], "botocore's own lines say it again"
    assert run.states == []


def test_duration_above_the_roles_maximum_names_the_setting(moto_server, fault_proxy, tmp_path):
    _, stream = _stream(moto_server)
    proxy = fault_proxy(
        sts_error=(
            400,
            "ValidationError",
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        )
    )
    config = base_config(
        proxy.url,
        stream_name=stream,
        role_arn="arn:aws:iam::123456789012:role/writer",
        role_session_duration_seconds=43200,
    )
    run = run_target(config, _input(), endpoint=proxy.url, tmp_path=tmp_path)
    assert run.returncode != 0
    line = _one_error(run)
    print("LINE:", line.split("| target-kinesis: ", 1)[-1])
    print("WARN:", [w for w in run.stderr.splitlines() if "WARNING" in w])
    assert "setting 'role_session_duration_seconds' (43200)" in line, line
    assert "trust policy" not in line


def test_a_read_timeout_names_the_endpoint(silent_endpoint, tmp_path):
    config = base_config(silent_endpoint.url, stream_name="s", preflight_check=False, read_timeout=0.3, max_retries=0)
    run = run_target(config, _input(1), endpoint=silent_endpoint.url, tmp_path=tmp_path)
    assert run.returncode != 0
    line = _one_error(run)
    print("LINE:", line.split("| target-kinesis: ", 1)[-1])
    print("WARN:", [w for w in run.stderr.splitlines() if "WARNING" in w])
    assert f"ReadTimeout: no answer from {silent_endpoint.url}" in line, line
