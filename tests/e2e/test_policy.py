"""target-kinesis-policy against the real target: every action it calls is granted, nothing else."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from target_kinesis.tools.policy import (
    KINESIS_CONTEXT_KEY,
    policy_actions,
)
from tests.support.fixtures import FaultProxyFactory
from tests.support.readback import (
    create_firehose_to_s3,
    create_kinesis_stream,
    read_firehose_s3,
    read_kinesis,
    split_lines,
    unique_name,
)
from tests.support.servers import REGION, aws_env, boto_client
from tests.unit.tools.test_policy import ACCOUNT, BIN, SECRET, _config, _firehose_rule, _run, _write

pytestmark = pytest.mark.e2e


IAM_SERVICE_OF_TARGET = {"Kinesis_20131202": "kinesis", "Firehose_20150804": "firehose"}


TARGET = str(BIN / "target-kinesis")


SCHEMA = {
    "type": "SCHEMA",
    "stream": "users",
    "schema": {"type": "object", "properties": {"id": {"type": "integer"}, "userId": {"type": "string"}}},
    "key_properties": ["id"],
}


def _iam_action(headers: dict[str, str], logged_action: str) -> str:
    """The IAM action of one recorded request: from X-Amz-Target when there is one."""
    target = {k.lower(): v for k, v in headers.items()}.get("x-amz-target")
    if not target:
        return logged_action  # STS is a query API: the proxy names it from the Action parameter
    prefix, _, operation = target.partition(".")
    return f"{IAM_SERVICE_OF_TARGET[prefix]}:{operation}"


@pytest.mark.e2e
def test_describe_finds_the_kms_key_and_the_account(moto_server: Any, tmp_path: Path) -> None:
    kinesis = boto_client("kinesis", moto_server.url)
    encrypted, managed = unique_name("enc"), unique_name("managed")
    firehose_name, bucket = unique_name("fh"), unique_name("bucket")
    for stream in (encrypted, managed):
        create_kinesis_stream(kinesis, stream, shards=1)
    key_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    kinesis.start_stream_encryption(StreamName=encrypted, EncryptionType="KMS", KeyId=key_arn)
    kinesis.start_stream_encryption(StreamName=managed, EncryptionType="KMS", KeyId="alias/aws/kinesis")
    create_firehose_to_s3(
        boto_client("firehose", moto_server.url), boto_client("s3", moto_server.url), firehose_name, bucket
    )
    config = {
        "region": REGION,
        "endpoint_url": moto_server.url,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "destinations": [
            {"event": "*", "stream": encrypted},
            {"event": "*", "stream": managed},
            _firehose_rule(firehose_name),
        ],
    }
    env = aws_env(moto_server.url)
    env.pop("AWS_ENDPOINT_URL")
    result = _run("--config", _write(tmp_path / "c.json", config), "--describe", "--permissions-only", env=env)
    assert result.returncode == 0, result.stderr
    statements = {s["Sid"]: s for s in json.loads(result.stdout)["Statement"]}
    encrypted_arn = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{encrypted}"
    assert statements["KinesisKmsEncrypt"] == {
        "Sid": "KinesisKmsEncrypt",
        "Effect": "Allow",
        "Action": ["kms:GenerateDataKey"],
        "Resource": [key_arn],
        "Condition": {"StringEquals": {KINESIS_CONTEXT_KEY: [encrypted_arn]}},  # not the managed-key stream
    }
    assert statements["KinesisWrite"]["Resource"] == sorted(
        [encrypted_arn, f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{managed}"]
    )
    assert set(statements) == {"FirehoseWrite", "KinesisWrite", "KinesisKmsEncrypt"}
    assert f"'{managed}' uses the AWS managed key" in result.stderr

    config["destinations"].append({"event": "*", "stream": "no-such-stream-policy"})
    missing = _run("--config", _write(tmp_path / "c.json", config), "--describe", env=env)
    assert missing.returncode == 1
    assert "'no-such-stream-policy'" in missing.stderr
    assert missing.stderr.count("\n") == 1
    assert "Traceback" not in missing.stderr


@pytest.mark.e2e
@pytest.mark.parametrize("preflight", [True, False])
def test_the_policy_grants_exactly_the_calls_the_target_makes(
    moto_server: Any, fault_proxy: FaultProxyFactory, tmp_path: Path, preflight: bool
) -> None:
    kinesis_client = boto_client("kinesis", moto_server.url)
    s3 = boto_client("s3", moto_server.url)
    stream, delivery, bucket = unique_name("k"), unique_name("f"), unique_name("bucket")
    create_kinesis_stream(kinesis_client, stream, shards=2)
    create_firehose_to_s3(boto_client("firehose", moto_server.url), s3, delivery, bucket)
    proxy = fault_proxy()  # records every request on its way to moto
    config = {
        **_config(stream, delivery, preflight_check=preflight),
        "endpoint_url": proxy.url,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "role_arn": f"arn:aws:iam::{ACCOUNT}:role/writer",
        "external_id": SECRET,
    }
    config_path = _write(tmp_path / "config.json", config)
    records = [{"type": "RECORD", "stream": "users", "record": {"id": i, "userId": f"u{i}"}} for i in range(12)]
    singer = tmp_path / "input.singer"
    singer.write_text("\n".join(json.dumps(m) for m in [SCHEMA, *records]) + "\n")
    env = aws_env(moto_server.url)
    env.pop("AWS_ENDPOINT_URL")

    run = subprocess.run(
        [TARGET, "--config", config_path, "--input", str(singer)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(read_kinesis(kinesis_client, stream)) == 12  # the run really wrote both destinations
    assert len(split_lines(read_firehose_s3(s3, bucket))) == 12

    result = _run("--config", config_path, "--account-id", ACCOUNT)
    assert result.returncode == 0, result.stderr
    documents = json.loads(result.stdout)
    permissions, trust = documents["permissions_policy"], documents["trust_policy"]

    requests = proxy.requests
    made = {_iam_action(entry.headers, entry.action) for entry in requests}
    writer_actions = {a for a in made if not a.startswith("sts:")}
    granted = {a for a in policy_actions(permissions) if not a.startswith("kms:")}
    assert writer_actions == granted
    assert ("kinesis:DescribeStreamSummary" in granted) is preflight

    # every call was on a resource its statement names
    resources = {a: s["Resource"] for s in permissions["Statement"] for a in s["Action"]}
    arns = {
        "kinesis": lambda body: f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{body['StreamName']}",
        "firehose": lambda body: f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{body['DeliveryStreamName']}",
    }
    for entry in requests:
        action = _iam_action(entry.headers, entry.action)
        service = action.split(":")[0]
        if service in arns:
            assert arns[service](entry.body) in resources[action], action

    # the trust side: the role was assumed with the ExternalId the trust policy requires
    assume = [entry for entry in requests if _iam_action(entry.headers, entry.action) == "sts:AssumeRole"]
    assert assume, "the target did not assume the role"
    required = trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"]
    assert {entry.body.get("ExternalId") for entry in assume} == {required}
    assert {entry.body.get("RoleArn") for entry in assume} == {config["role_arn"]}
