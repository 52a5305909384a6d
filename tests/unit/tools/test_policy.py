"""target-kinesis-policy: the documents it builds, and a check against the real target that
every AWS action the target makes is granted and nothing else is."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from target_kinesis.aws.batch_api import StreamInfo
from target_kinesis.config.destinations import Destination
from target_kinesis.config.settings import Settings
from target_kinesis.tools import policy
from target_kinesis.tools.cli import ToolError
from target_kinesis.tools.policy import (
    ACCOUNT_PLACEHOLDER,
    KINESIS_CONTEXT_KEY,
    TRUSTED_PRINCIPAL_PLACEHOLDER,
    account_from_arns,
    account_from_role_arn,
    assign_kms_keys,
    build_policies,
    kms_grant,
    policy_actions,
)


def _info(arn: str, *, encrypted: bool, key: str | None) -> StreamInfo:
    return StreamInfo("ACTIVE", True, encrypted, key, arn, None)


BIN = Path(__file__).resolve().parents[3] / ".venv" / "bin"
POLICY = str(BIN / "target-kinesis-policy")
ACCOUNT = "123456789012"
SECRET = "ext-id-do-not-leak-7f3a"


def _config(kinesis: str = "events", firehose: str = "archive", **extra: Any) -> dict[str, Any]:
    return {
        "region": "us-east-1",
        "destinations": [
            {"event": "*", "stream": kinesis},
            {"event": "*", "stream": firehose, "service": "firehose"},
        ],
        **extra,
    }


def _settings(**extra: Any) -> Settings:
    return Settings.from_config(_config(**extra))


KINESIS = Destination("kinesis", "events")
FIREHOSE = Destination("firehose", "archive")
KINESIS_ARN = f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/events"
FIREHOSE_ARN = f"arn:aws:firehose:us-east-1:{ACCOUNT}:deliverystream/archive"


def _expected_permissions(kinesis_arn: str, firehose_arn: str, preflight: bool = True) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "FirehoseWrite",
                "Effect": "Allow",
                "Action": ["firehose:DescribeDeliveryStream", "firehose:PutRecordBatch"]
                if preflight
                else ["firehose:PutRecordBatch"],
                "Resource": [firehose_arn],
            },
            {
                "Sid": "KinesisWrite",
                "Effect": "Allow",
                "Action": ["kinesis:DescribeStreamSummary", "kinesis:ListShards", "kinesis:PutRecords"]
                if preflight
                else ["kinesis:ListShards", "kinesis:PutRecords"],
                "Resource": [kinesis_arn],
            },
        ],
    }


# -- the documents -----------------------------------------------------------------------


def test_one_kinesis_and_one_firehose_destination_get_exactly_their_calls() -> None:
    documents = build_policies(_settings(), ACCOUNT)
    assert documents["permissions_policy"] == _expected_permissions(KINESIS_ARN, FIREHOSE_ARN)


def test_without_preflight_the_describe_calls_are_not_granted() -> None:
    documents = build_policies(_settings(preflight_check=False), ACCOUNT)
    assert documents["permissions_policy"] == _expected_permissions(KINESIS_ARN, FIREHOSE_ARN, preflight=False)


def test_streams_of_one_service_share_one_statement_with_sorted_resources() -> None:
    settings = Settings.from_config(
        {
            "region": "eu-west-1",
            "destinations": [
                {"event": "page", "stream": "zeta"},
                {"event": "*", "stream": "alpha"},
                {"event": "identify", "stream": "alpha"},  # the same stream twice: one resource
            ],
        }
    )
    statements = build_policies(settings, ACCOUNT)["permissions_policy"]["Statement"]
    assert statements == [
        {
            "Sid": "KinesisWrite",
            "Effect": "Allow",
            "Action": ["kinesis:DescribeStreamSummary", "kinesis:ListShards", "kinesis:PutRecords"],
            "Resource": [
                f"arn:aws:kinesis:eu-west-1:{ACCOUNT}:stream/alpha",
                f"arn:aws:kinesis:eu-west-1:{ACCOUNT}:stream/zeta",
            ],
        }
    ]


def test_without_an_account_id_the_arns_carry_a_placeholder() -> None:
    statements = build_policies(_settings())["permissions_policy"]["Statement"]
    resources = [r for s in statements for r in s["Resource"]]
    assert resources == [
        f"arn:aws:firehose:us-east-1:{ACCOUNT_PLACEHOLDER}:deliverystream/archive",
        f"arn:aws:kinesis:us-east-1:{ACCOUNT_PLACEHOLDER}:stream/events",
    ]


def test_china_regions_use_their_partition() -> None:
    settings = Settings.from_config({"region": "cn-north-1", "stream_name": "s"})
    statement = build_policies(settings, ACCOUNT)["permissions_policy"]["Statement"][0]
    assert statement["Resource"] == [f"arn:aws-cn:kinesis:cn-north-1:{ACCOUNT}:stream/s"]


@pytest.mark.parametrize(
    ("key", "resource", "alias"),
    [
        ("1234abcd-12ab", f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab", None),
        (
            "arn:aws:kms:eu-west-1:999999999999:key/abcd",
            "arn:aws:kms:eu-west-1:999999999999:key/abcd",
            None,
        ),
        ("alias/team-key", f"arn:aws:kms:us-east-1:{ACCOUNT}:key/*", "alias/team-key"),
        (
            "arn:aws:kms:eu-west-1:999999999999:alias/team-key",
            "arn:aws:kms:eu-west-1:999999999999:key/*",
            "alias/team-key",
        ),
    ],
)
def test_kms_keys_are_granted_by_arn_or_through_their_alias(key: str, resource: str, alias: str | None) -> None:
    grant = kms_grant(key, "us-east-1", ACCOUNT)
    assert grant is not None
    assert (grant.resource, grant.alias) == (resource, alias)


def test_the_aws_managed_kinesis_key_needs_no_statement() -> None:
    assert kms_grant("alias/aws/kinesis", "us-east-1", ACCOUNT) is None
    assert kms_grant(f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/aws/kinesis", "us-east-1", ACCOUNT) is None
    documents = build_policies(_settings(), ACCOUNT, {KINESIS: "alias/aws/kinesis"})
    assert policy_actions(documents["permissions_policy"]) == {
        "kinesis:PutRecords",
        "kinesis:ListShards",
        "kinesis:DescribeStreamSummary",
        "firehose:PutRecordBatch",
        "firehose:DescribeDeliveryStream",
    }


def test_an_encrypted_kinesis_stream_gets_generate_data_key_for_that_stream_only() -> None:
    key_arn = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1111"
    documents = build_policies(_settings(), ACCOUNT, {KINESIS: key_arn, FIREHOSE: "arn:aws:kms:x:1:key/ignored"})
    kms = [s for s in documents["permissions_policy"]["Statement"] if s["Action"] == ["kms:GenerateDataKey"]]
    assert kms == [
        {
            "Sid": "KinesisKmsEncrypt",
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey"],
            "Resource": [key_arn],
            "Condition": {"StringEquals": {KINESIS_CONTEXT_KEY: [KINESIS_ARN]}},
        }
    ]


def test_a_key_known_by_alias_is_granted_through_resource_aliases() -> None:
    documents = build_policies(_settings(), ACCOUNT, {KINESIS: "alias/team-key"})
    statement = documents["permissions_policy"]["Statement"][-1]
    assert statement["Resource"] == [f"arn:aws:kms:us-east-1:{ACCOUNT}:key/*"]
    assert statement["Condition"] == {
        "StringEquals": {KINESIS_CONTEXT_KEY: [KINESIS_ARN]},
        "ForAnyValue:StringEquals": {"kms:ResourceAliases": ["alias/team-key"]},
    }


def test_trust_policy_requires_the_configs_external_id() -> None:
    settings = _settings(role_arn=f"arn:aws:iam::{ACCOUNT}:role/writer", external_id=SECRET)
    documents = build_policies(settings, ACCOUNT, trusted_principal="arn:aws:iam::222222222222:root")
    assert documents["trust_policy"] == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TargetKinesisAssumeRole",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": SECRET}},
            }
        ],
    }
    # the secret is in the trust document, and only there
    assert SECRET not in json.dumps(documents["permissions_policy"])


def test_trust_policy_without_external_id_has_no_condition_and_a_placeholder_principal() -> None:
    statement = build_policies(_settings())["trust_policy"]["Statement"][0]
    assert "Condition" not in statement
    assert statement["Principal"] == {"AWS": TRUSTED_PRINCIPAL_PLACEHOLDER}


def test_kms_key_flags_apply_to_every_kinesis_destination_or_to_one() -> None:
    settings = Settings.from_config(
        {"destinations": [{"event": "*", "stream": "a"}, {"event": "*", "stream": "b"}, _firehose_rule("c")]}
    )
    a, b = Destination("kinesis", "a"), Destination("kinesis", "b")
    assert assign_kms_keys(settings, ["k1"]) == {a: "k1", b: "k1"}
    assert assign_kms_keys(settings, ["k1", "b=arn:aws:kms:r:1:key/k2"]) == {a: "k1", b: "arn:aws:kms:r:1:key/k2"}
    with pytest.raises(ToolError, match="no kinesis destination 'c'"):
        assign_kms_keys(settings, ["c=k3"])


def _firehose_rule(stream: str) -> dict[str, str]:
    return {"event": "*", "stream": stream, "service": "firehose"}


def test_account_comes_from_described_arns_only_when_they_agree() -> None:
    assert account_from_arns([KINESIS_ARN, FIREHOSE_ARN, None]) == ACCOUNT
    assert account_from_arns([KINESIS_ARN, "arn:aws:kinesis:us-east-1:999999999999:stream/x"]) is None
    assert account_from_arns([None]) is None


def test_account_of_a_role_arn() -> None:
    assert account_from_role_arn(f"arn:aws:iam::{ACCOUNT}:role/writer") == ACCOUNT
    assert account_from_role_arn(f"arn:aws-cn:iam::{ACCOUNT}:role/path/to/writer") == ACCOUNT
    assert account_from_role_arn(f"arn:aws:iam::{ACCOUNT}:user/someone") is None  # not a role
    assert account_from_role_arn(f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/s") is None
    assert account_from_role_arn("arn:aws:iam::12345:role/short-account") is None
    assert account_from_role_arn("writer") is None
    assert account_from_role_arn(None) is None


def _main(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str, **extra: Any) -> tuple[Any, str]:
    """policy.main on `_config(**extra)`: (the printed JSON, stderr); it must exit 0."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps(_config(**extra)))
    assert policy.main(["--config", str(config), *args]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


def test_without_account_id_the_account_comes_from_role_arn_and_stderr_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/writer"
    document, err = _main(tmp_path, capsys, "--permissions-only", role_arn=role, external_id=SECRET)
    assert document == _expected_permissions(KINESIS_ARN, FIREHOSE_ARN)
    assert f"note: account {ACCOUNT} is role_arn's" in err and "--account-id" in err
    assert ACCOUNT_PLACEHOLDER not in json.dumps(document) + err

    # --account-id wins, quietly
    other = "999999999999"
    document, err = _main(tmp_path, capsys, "--permissions-only", "--account-id", other, role_arn=role)
    assert document == _expected_permissions(KINESIS_ARN.replace(ACCOUNT, other), FIREHOSE_ARN.replace(ACCOUNT, other))
    assert "role_arn's" not in err

    # the trust policy alone names no stream: nothing to say about the account
    _, err = _main(tmp_path, capsys, "--trust-only", role_arn=role, external_id=SECRET)
    assert "role_arn's" not in err


def test_the_described_streams_account_comes_before_role_arns(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    described = {
        KINESIS: _info(KINESIS_ARN, encrypted=False, key=None),
        FIREHOSE: _info(FIREHOSE_ARN, encrypted=False, key=None),
    }
    monkeypatch.setattr(policy, "describe_destinations", lambda settings: described)
    role = "arn:aws:iam::999999999999:role/writer"  # a role in another account than the streams
    document, err = _main(tmp_path, capsys, "--describe", "--permissions-only", role_arn=role, external_id=SECRET)
    assert document == _expected_permissions(KINESIS_ARN, FIREHOSE_ARN)
    assert "role_arn's" not in err


def test_role_arn_without_external_id_warns_of_the_confused_deputy_and_still_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/writer"
    documents, err = _main(tmp_path, capsys, role_arn=role)
    assert "Condition" not in documents["trust_policy"]["Statement"][0]
    assert documents["permissions_policy"] == _expected_permissions(KINESIS_ARN, FIREHOSE_ARN)
    (warning,) = [line for line in err.splitlines() if "warning:" in line]
    assert warning.startswith("target-kinesis-policy: warning: the config sets role_arn but no external_id")
    assert "sts:ExternalId" in warning and "confused-deputy" in warning

    for args, extra in (((), {"role_arn": role, "external_id": SECRET}), (("--permissions-only",), {})):
        _, err = _main(tmp_path, capsys, *args, **extra)
        assert "warning:" not in err  # with an ExternalId, or without a role to assume
        assert SECRET not in err


def test_encrypted_firehose_streams_need_no_kms_grant(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    described = {
        KINESIS: _info(KINESIS_ARN, encrypted=False, key=None),
        FIREHOSE: _info(FIREHOSE_ARN, encrypted=True, key=f"arn:aws:kms:us-east-1:{ACCOUNT}:key/fh"),
    }
    monkeypatch.setattr(policy, "describe_destinations", lambda settings: described)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(_config()))
    assert policy.main(["--config", str(config), "--describe", "--permissions-only"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == _expected_permissions(KINESIS_ARN, FIREHOSE_ARN)  # account from the ARNs
    assert "firehose stream 'archive' is encrypted" in captured.err


def test_config_errors_are_one_line_without_the_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"stream_name": "s", "external_id": SECRET}))  # external_id without role_arn
    assert policy.main(["--config", str(config)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "external_id" in captured.err
    assert SECRET not in captured.err
    assert captured.err.count("\n") == 1


def test_bad_account_id_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        policy.main(["--config", "x.json", "--account-id", "12345"])
    assert exited.value.code == 2
    assert "--account-id" in capsys.readouterr().err


# -- end to end --------------------------------------------------------------------------


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([POLICY, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def _write(path: Path, config: dict[str, Any]) -> str:
    path.write_text(json.dumps(config))
    return str(path)


@pytest.mark.e2e
def test_cli_prints_both_documents_and_each_one_alone(tmp_path: Path) -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/writer"
    config = _write(tmp_path / "c.json", _config(role_arn=role, external_id=SECRET))
    both = _run("--config", config, "--account-id", ACCOUNT, "--trusted-principal", "arn:aws:iam::222222222222:root")
    assert both.returncode == 0, both.stderr
    documents = json.loads(both.stdout)
    assert set(documents) == {"permissions_policy", "trust_policy"}
    assert documents["permissions_policy"] == _expected_permissions(KINESIS_ARN, FIREHOSE_ARN)
    assert documents["trust_policy"]["Statement"][0]["Condition"] == {"StringEquals": {"sts:ExternalId": SECRET}}

    permissions = _run("--config", config, "--account-id", ACCOUNT, "--permissions-only")
    assert json.loads(permissions.stdout) == documents["permissions_policy"]
    assert SECRET not in permissions.stdout + permissions.stderr

    trust = _run("--config", config, "--trust-only", "--trusted-principal", "arn:aws:iam::222222222222:root")
    assert json.loads(trust.stdout) == documents["trust_policy"]
    assert SECRET not in trust.stderr

    clash = _run("--config", config, "--trust-only", "--permissions-only")
    assert clash.returncode == 2
    assert clash.stdout == ""


#: The service part of an X-Amz-Target header (``Kinesis_20131202.PutRecords``) as IAM names it.


def test_a_mistyped_setting_is_one_line_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"stream_name": "s", "max_retries": "ten"}))
    assert policy.main(["--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "setting 'max_retries' must be of type integer" in err and "ten" not in err
    assert err.count("\n") == 1


# -- dead letters in S3 -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "resource"),
    [
        ("s3://dead-letters/target/", "arn:aws:s3:::dead-letters/target/*"),
        ("s3://dead-letters/target", "arn:aws:s3:::dead-letters/target/*"),
        ("s3://dead-letters", "arn:aws:s3:::dead-letters/*"),
    ],
)
def test_an_s3_dead_letter_path_grants_put_object_on_its_prefix_only(path: str, resource: str) -> None:
    permissions = build_policies(_settings(dead_letter_path=path), ACCOUNT)["permissions_policy"]
    (statement,) = [s for s in permissions["Statement"] if s["Sid"] == "DeadLetterWrite"]
    assert statement == {
        "Sid": "DeadLetterWrite",
        "Effect": "Allow",
        "Action": ["s3:PutObject"],
        "Resource": [resource],
    }
    assert {a for a in policy_actions(permissions) if a.startswith("s3:")} == {"s3:PutObject"}


def test_redrive_adds_reading_listing_and_deleting_under_the_prefix_only() -> None:
    settings = _settings(dead_letter_path="s3://dead-letters/target/")
    plain = build_policies(settings, ACCOUNT)["permissions_policy"]
    permissions = build_policies(settings, ACCOUNT, redrive=True)["permissions_policy"]
    added = [s for s in permissions["Statement"] if s not in plain["Statement"]]
    assert added == [
        {
            "Sid": "DeadLetterRedrive",
            "Effect": "Allow",
            "Action": ["s3:DeleteObject", "s3:GetObject"],
            "Resource": ["arn:aws:s3:::dead-letters/target/*"],
        },
        {
            "Sid": "DeadLetterList",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": ["arn:aws:s3:::dead-letters"],
            "Condition": {"StringLike": {"s3:prefix": ["target/*"]}},
        },
    ]
    assert {a for a in policy_actions(plain) if a.startswith("s3:")} == {"s3:PutObject"}, "only with --redrive"


def test_redrive_without_an_s3_dead_letter_path_is_a_one_line_error(tmp_path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"stream_name": "s", "region": "us-east-1"}))
    result = subprocess.run(
        [str(BIN / "target-kinesis-policy"), "--config", str(config), "--redrive"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "target-kinesis-policy: --redrive needs a dead_letter_path of s3://bucket/prefix/ in the config "
        "(a file needs no grant)\n"
    )
    assert result.stdout == ""


@pytest.mark.parametrize("path", [None, "/var/lib/target-kinesis/dead.jsonl"])
def test_no_s3_grant_without_an_s3_dead_letter_path(path: str | None) -> None:
    extra = {"dead_letter_path": path} if path else {}
    permissions = build_policies(_settings(**extra), ACCOUNT)["permissions_policy"]
    assert permissions == _expected_permissions(KINESIS_ARN, FIREHOSE_ARN)


def test_the_dead_letter_grant_follows_the_regions_partition() -> None:
    settings = Settings.from_config(
        {"region": "cn-north-1", "stream_name": "events", "dead_letter_path": "s3://dlq/x/"}
    )
    permissions = build_policies(settings, ACCOUNT)["permissions_policy"]
    assert permissions["Statement"][-1]["Resource"] == ["arn:aws-cn:s3:::dlq/x/*"]
