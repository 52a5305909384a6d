"""Credentials through the real CLI: the default chain, a named profile, an assumed role.

aws_env() gives the subprocess dummy keys in its environment; each test says where the
credentials must come from and checks the call was signed with them.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.readback import create_kinesis_stream, read_kinesis, unique_name
from tests.support.servers import aws_env, boto_client
from tests.support.target_cli import TARGET, record, schema, singer_lines

pytestmark = pytest.mark.e2e

INPUT = singer_lines(
    schema("users", {"id": {"type": "integer"}, "user_id": {"type": "string"}}, ["id"]),
    record("users", {"id": 1, "user_id": "u1"}),
    {"type": "ACTIVATE_VERSION", "stream": "users", "version": 1},
    record("users", {"id": 2, "user_id": "u2"}),
)


def _run(config: dict, env: dict, tmp_path) -> subprocess.CompletedProcess:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return subprocess.run(
        [TARGET, "--config", str(path)], input=INPUT.encode(), capture_output=True, env=env, timeout=120, check=False
    )


def _signed_with(proxy, access_key: str) -> bool:
    puts = proxy.requests_for("kinesis:PutRecords")
    return bool(puts) and all(f"Credential={access_key}/" in entry.headers.get("Authorization", "") for entry in puts)


def test_default_chain_from_environment(moto_server, fault_proxy, tmp_path):
    proxy = fault_proxy()
    kinesis = boto_client("kinesis", moto_server.url)
    stream = unique_name("chain")
    create_kinesis_stream(kinesis, stream)
    env = aws_env(proxy.url, set_endpoint=False)
    env["AWS_ACCESS_KEY_ID"] = "AKIAFROMENVIRONMENT"
    done = _run({"stream_name": stream, "endpoint_url": proxy.url}, env, tmp_path)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert _signed_with(proxy, "AKIAFROMENVIRONMENT")
    assert len(read_kinesis(kinesis, stream)) == 2
    assert "ACTIVATE_VERSION" not in done.stderr.decode(), "accepted quietly: a stream has no versions"


def test_named_profile(moto_server, fault_proxy, tmp_path):
    proxy = fault_proxy()
    kinesis = boto_client("kinesis", moto_server.url)
    stream = unique_name("profile")
    create_kinesis_stream(kinesis, stream)
    credentials = tmp_path / "credentials"
    credentials.write_text("[pipeline]\naws_access_key_id = AKIAFROMPROFILE\naws_secret_access_key = fromprofile\n")
    env = aws_env(proxy.url, set_endpoint=False)
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(credentials)
    done = _run({"stream_name": stream, "endpoint_url": proxy.url, "aws_profile": "pipeline"}, env, tmp_path)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert _signed_with(proxy, "AKIAFROMPROFILE")

    missing = _run({"stream_name": stream, "endpoint_url": proxy.url, "aws_profile": "nope"}, env, tmp_path)
    assert missing.returncode != 0
    assert "aws_profile" in missing.stderr.decode() and "'nope' not found" in missing.stderr.decode()


def test_assumed_role_signs_with_session_credentials(moto_server, fault_proxy, tmp_path):
    proxy = fault_proxy()
    kinesis = boto_client("kinesis", moto_server.url)
    stream = unique_name("role")
    create_kinesis_stream(kinesis, stream)
    config = {
        "stream_name": stream,
        "endpoint_url": proxy.url,
        "role_arn": "arn:aws:iam::123456789012:role/writer",
        "external_id": "ext-9",
    }
    done = _run(config, aws_env(proxy.url, set_endpoint=False), tmp_path)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    (assume,) = proxy.requests_for("sts:AssumeRole")
    assert assume.body["RoleSessionName"] == "target-kinesis"
    assert assume.body["ExternalId"] == "ext-9"
    puts = proxy.requests_for("kinesis:PutRecords")
    assert puts and not any("Credential=testing/" in p.headers.get("Authorization", "") for p in puts), (
        "writes are signed with the role's session keys, not the caller's"
    )
    assert all("X-Amz-Security-Token" in p.headers for p in puts)


def test_static_keys_with_session_token_and_custom_session_name(moto_server, fault_proxy, tmp_path):
    proxy = fault_proxy()
    kinesis = boto_client("kinesis", moto_server.url)
    stream = unique_name("token")
    create_kinesis_stream(kinesis, stream)
    config = {
        "stream_name": stream,
        "endpoint_url": proxy.url,
        "aws_access_key_id": "ASIATEMPORARY",
        "aws_secret_access_key": "temporary-secret",
        "aws_session_token": "session-token-value-123",
    }
    done = _run(config, aws_env(proxy.url, set_endpoint=False), tmp_path)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    puts = proxy.requests_for("kinesis:PutRecords")
    assert _signed_with(proxy, "ASIATEMPORARY")
    assert {p.headers.get("X-Amz-Security-Token") for p in puts} == {"session-token-value-123"}
    assert "session-token-value-123" not in done.stderr.decode() and "temporary-secret" not in done.stderr.decode()

    role = {
        "stream_name": stream,
        "endpoint_url": proxy.url,
        "role_arn": "arn:aws:iam::123456789012:role/writer",
        "role_session_name": "nightly-orders",
    }
    done = _run(role, aws_env(proxy.url, set_endpoint=False), tmp_path)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert proxy.requests_for("sts:AssumeRole")[-1].body["RoleSessionName"] == "nightly-orders"


def test_timeouts_reach_every_client():
    from target_kinesis.aws.clients import AwsClients
    from target_kinesis.config.settings import Settings

    clients = AwsClients(
        Settings.from_config(
            {
                "stream_name": "s",
                "connect_timeout": "2.5",
                "read_timeout": 7,
                "aws_access_key_id": "a",
                "aws_secret_access_key": "b",
            }
        ).aws_access()
    )
    for service in ("kinesis", "firehose", "sts"):
        config = clients.client(service).meta.config
        assert (config.connect_timeout, config.read_timeout) == (2.5, 7.0)
        assert config.retries["total_max_attempts"] == 1, "retries are ours (retry.py), not botocore's"
