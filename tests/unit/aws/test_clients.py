"""AWS sessions and clients (`aws/clients.py`): botocore sessions, the run's data loader, and
no boto3 at start-up."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import pytest
from botocore.exceptions import UnknownServiceError
from botocore.loaders import JSONFileLoader, Loader

from target_kinesis.aws.clients import RUN_SERVICES, AwsAccess, AwsClients, _FastJsonFileLoader, _RunLoader
from target_kinesis.errors import ConfigError


@pytest.fixture
def no_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_DATA_PATH", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "config").write_text("[profile pipeline]\nregion = eu-west-2\n")
    (tmp_path / "credentials").write_text("[pipeline]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = p\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))


def test_a_missing_profile_is_a_config_error_when_the_clients_are_built(no_aws_environment: None) -> None:
    """Not at the first call: boto3 sessions raised ProfileNotFound when built, botocore's only
    when the profile is first read, which AwsClients does at once."""
    with pytest.raises(ConfigError, match="setting 'aws_profile': profile 'nope' not found in the AWS config files"):
        AwsClients(AwsAccess(region="us-east-1", aws_profile="nope"))


def test_clients_have_the_access_settings(no_aws_environment: None) -> None:
    access = AwsAccess(
        region="eu-central-1",
        endpoint_url="http://127.0.0.1:1",
        aws_access_key_id="AKIAKEYS",
        aws_secret_access_key="s",
        connect_timeout=3.0,
        read_timeout=7.0,
    )
    clients = AwsClients(access, max_pool_connections=33)
    for service in RUN_SERVICES:
        client = clients.client(service)
        assert client is clients.client(service)
        assert client.meta.region_name == "eu-central-1"
        assert client.meta.endpoint_url == "http://127.0.0.1:1"
        assert client.meta.config.max_pool_connections == 33
        assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == (3.0, 7.0)
        assert "target-kinesis/" in client.meta.config.user_agent_extra
    assert clients.session.get_credentials().access_key == "AKIAKEYS"


def test_a_profile_gives_its_credentials(no_aws_environment: None) -> None:
    clients = AwsClients(AwsAccess(region="us-east-1", aws_profile="pipeline"))
    assert clients.session.get_credentials().access_key == "AKIAPROFILE"
    assert clients.client("kinesis").meta.region_name == "us-east-1"


def test_the_run_loader_finds_what_botocore_finds_for_the_run_services() -> None:
    ours, botocores = _RunLoader(), Loader()
    for type_name in ("service-2", "endpoint-rule-set-1"):
        everything = botocores.list_available_services(type_name)
        assert ours.list_available_services(type_name) == [s for s in RUN_SERVICES if s in everything]
        for service in RUN_SERVICES:
            assert ours.load_service_model(service, type_name) == botocores.load_service_model(service, type_name)
    with pytest.raises(UnknownServiceError):
        ours.load_service_model("dynamodb", "service-2")


def test_starting_does_not_import_boto3() -> None:
    """The target's command imports botocore, not boto3 (and boto3's s3transfer)."""
    code = "import sys; import target_kinesis.singer.target; print([m for m in ('boto3', 's3transfer') if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_the_fast_json_loader_reads_the_same_data_in_the_same_order() -> None:
    """Every model file a run's clients read, as botocore's own JSON loader reads it (dumped, so
    that key order counts too)."""
    loader = Loader()
    ours, botocores = _FastJsonFileLoader(), JSONFileLoader()
    data = loader.BUILTIN_DATA_PATH
    paths = [os.path.join(data, name) for name in ("endpoints", "partitions", "_retry", "sdk-default-configuration")]
    for service in RUN_SERVICES:
        version = loader.determine_latest_version(service, "service-2")
        for type_name in ("service-2", "endpoint-rule-set-1", "paginators-1", "waiters-2", "service-2.sdk-extras"):
            paths.append(os.path.join(data, service, version, type_name))
    compared = 0
    for path in paths:
        expected = botocores.load_file(path)
        assert json.dumps(ours.load_file(path)) == json.dumps(expected), path
        compared += expected is not None
    assert compared >= 12
    assert ours.load_file(os.path.join(data, "no-such-file")) is None


def test_the_fast_json_loader_keeps_every_integer_and_reads_gzip(tmp_path) -> None:
    (tmp_path / "big.json").write_text('{"n": 123456789012345678901234567890, "b": 1}')
    with gzip.open(tmp_path / "zipped.json.gz", "wb") as zipped:
        zipped.write(b'{"z": [1.5, "x"]}')
    ours = _FastJsonFileLoader()
    assert ours.load_file(str(tmp_path / "big")) == {"n": 123456789012345678901234567890, "b": 1}
    assert ours.load_file(str(tmp_path / "zipped")) == {"z": [1.5, "x"]}
