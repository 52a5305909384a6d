"""Unit tests of target_kinesis.settings (and the target's config validation) against SPEC.md "Settings".

No AWS: `TargetKinesis(config=...)` validates the configuration in its constructor and
contacts AWS only when it starts writing, which these tests never do.
"""

from __future__ import annotations

import logging

import pytest

from target_kinesis.config.destinations import Destination, Rule
from target_kinesis.config.schema import CONFIG_SCHEMA
from target_kinesis.config.settings import Settings, unknown_setting
from target_kinesis.errors import ConfigError
from target_kinesis.singer.target import TargetKinesis

KIB = 1024
MIB = 1024 * KIB
SECRET = "Sekr3t-zQ9xW7-DoNotLeak"
SECRET_NUMBER = 987654321987654
SPEC_SETTINGS = {
    "region",
    "endpoint_url",
    "service",
    "stream_name",
    "destinations",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_profile",
    "role_arn",
    "external_id",
    "role_session_name",
    "events",
    "exclude_fields",
    "hash_fields",
    "send_anonymous_users",
    "partition_key",
    "append_newline",
    "max_batch_records",
    "max_batch_bytes",
    "max_record_bytes",
    "max_concurrent_requests",
    "max_retries",
    "on_oversized_record",
    "dead_letter_path",
    "preflight_check",
    "state_flush_seconds",
    "ordering",
    "connect_timeout",
    "read_timeout",
}


def settings(**config: object) -> Settings:
    return Settings.from_config(config)


def config_error(**config: object) -> str:
    with pytest.raises(ConfigError) as info:
        Settings.from_config(config)
    return str(info.value)


# -- the schema is the public interface ------------------------------------------------------------


def test_schema_declares_every_spec_setting() -> None:
    missing = SPEC_SETTINGS - set(CONFIG_SCHEMA["properties"])
    assert not missing


def test_schema_marks_the_spec_secrets_secret() -> None:
    secret = {name for name, prop in CONFIG_SCHEMA["properties"].items() if prop.get("secret")}
    assert secret == {"aws_secret_access_key", "aws_session_token", "external_id"}


# -- where to write ------------------------------------------------------------------------------


def test_stream_name_is_shorthand_for_a_star_rule() -> None:
    s = settings(stream_name="events")
    assert s.rules == (Rule("*", Destination("kinesis", "events")),)
    assert s.destinations == [Destination("kinesis", "events")]


def test_service_applies_to_destinations_without_one() -> None:
    s = settings(
        service="firehose",
        destinations=[{"event": "identify", "stream": "users"}, {"event": "*", "stream": "all", "service": "kinesis"}],
    )
    assert s.rules == (
        Rule("identify", Destination("firehose", "users")),
        Rule("*", Destination("kinesis", "all")),
    )


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"stream_name": ""},
        {"destinations": []},
        {"stream_name": "a", "destinations": [{"event": "*", "stream": "b"}]},
    ],
)
def test_exactly_one_of_stream_name_or_destinations(config: dict) -> None:
    message = config_error(**config)
    assert "stream_name" in message
    assert "destinations" in message


def test_destination_needs_event_and_stream() -> None:
    assert "destinations[0].event" in config_error(destinations=[{"stream": "s"}])
    assert "destinations[1].stream" in config_error(destinations=[{"event": "*", "stream": "s"}, {"event": "*"}])


def test_unknown_service_is_rejected() -> None:
    assert "service" in config_error(stream_name="s", service="sqs")
    assert "destinations[0].service" in config_error(destinations=[{"event": "*", "stream": "s", "service": "sqs"}])


# -- stream names ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "my_stream.v1-prod", "A" * 128, "0.9_-"])
def test_valid_kinesis_stream_names(name: str) -> None:
    assert settings(stream_name=name).destinations == [Destination("kinesis", name)]


@pytest.mark.parametrize("name", ["b" * 129, "my stream", "a/b", "stream:1", "strém", "a\n", "*"])
def test_invalid_kinesis_stream_names(name: str) -> None:
    message = config_error(stream_name=name)
    assert "stream_name" in message
    assert "kinesis" in message


def test_firehose_names_are_limited_to_64_characters() -> None:
    assert settings(stream_name="f" * 64, service="firehose").destinations == [Destination("firehose", "f" * 64)]
    message = config_error(stream_name="f" * 65, service="firehose")
    assert "firehose" in message
    assert "64" in message
    # The same 65-character name is fine for Kinesis.
    assert settings(stream_name="f" * 65).destinations == [Destination("kinesis", "f" * 65)]


def test_stream_name_rules_apply_per_destination_service() -> None:
    message = config_error(
        destinations=[
            {"event": "track", "stream": "k" * 100},
            {"event": "identify", "stream": "h" * 100, "service": "firehose"},
        ]
    )
    assert "destinations[1].stream" in message
    assert "firehose" in message


@pytest.mark.parametrize("name", ["", "bad name"])
def test_bad_destination_stream_name_names_the_rule(name: str) -> None:
    message = config_error(destinations=[{"event": "*", "stream": "ok"}, {"event": "x", "stream": name}])
    assert "destinations[1].stream" in message


# -- limits ---------------------------------------------------------------------------------------


def test_batch_bytes_defaults_per_service() -> None:
    s = settings(destinations=[{"event": "*", "stream": "k"}, {"event": "*", "stream": "f", "service": "firehose"}])
    assert s.batch_bytes("kinesis") == 5 * MIB
    assert s.batch_bytes("firehose") == 4 * MIB


def test_max_batch_bytes_up_to_the_kinesis_limit_is_accepted() -> None:
    assert settings(stream_name="k", max_batch_bytes=10 * MIB).batch_bytes("kinesis") == 10 * MIB
    assert settings(stream_name="k", max_batch_bytes=1 * MIB).batch_bytes("kinesis") == 1 * MIB


@pytest.mark.parametrize(("service", "limit"), [("kinesis", 10 * MIB), ("firehose", 4 * MIB)])
def test_max_batch_bytes_above_the_service_limit_is_rejected(service: str, limit: int) -> None:
    assert settings(stream_name="s", service=service, max_batch_bytes=limit).batch_bytes(service) == limit
    message = config_error(stream_name="s", service=service, max_batch_bytes=limit + 1)
    assert "max_batch_bytes" in message
    assert service in message


@pytest.mark.parametrize(("service", "limit"), [("kinesis", 10 * MIB), ("firehose", 1000 * KIB)])
def test_max_record_bytes_above_the_service_limit_is_rejected(service: str, limit: int) -> None:
    assert settings(stream_name="s", service=service, max_record_bytes=limit).max_record_bytes == limit
    assert "max_record_bytes" in config_error(stream_name="s", service=service, max_record_bytes=limit + 1)


def test_max_batch_records_above_500_is_rejected_by_config_validation() -> None:
    with pytest.raises(ConfigError) as info:
        TargetKinesis(config={"stream_name": "s", "max_batch_records": 501})
    assert "max_batch_records" in str(info.value)
    assert TargetKinesis(config={"stream_name": "s", "max_batch_records": 500}).settings.max_batch_records == 500


# -- dead letters and other rules ---------------------------------------------------------------------


@pytest.mark.parametrize("path", [None, ""])
def test_dead_letter_without_path_is_rejected(path: str | None) -> None:
    config: dict[str, object] = {"stream_name": "s", "on_oversized_record": "dead_letter"}
    if path is not None:
        config["dead_letter_path"] = path
    message = config_error(**config)
    assert "dead_letter_path" in message


def test_dead_letter_with_path_is_accepted(tmp_path) -> None:
    path = str(tmp_path / "dead.jsonl")
    s = settings(stream_name="s", on_oversized_record="dead_letter", dead_letter_path=path)
    assert s.on_oversized_record == "dead_letter"
    assert s.dead_letter_path == path


def test_events_entries_are_checked() -> None:
    message = config_error(stream_name="s", events={"orders": {"type": "purchase"}})
    assert "events.orders" in message


def test_defaults_follow_the_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    s = settings(stream_name="s")
    assert s.region == "us-east-1"
    assert s.endpoint_url is None
    assert s.role_session_name == "target-kinesis"
    assert s.send_anonymous_users is True
    assert s.partition_key == "userId"
    assert s.max_batch_records == 500
    assert s.max_batch_bytes is None
    assert s.max_record_bytes is None
    assert s.max_concurrent_requests == 4
    assert s.max_retries == 10
    assert s.on_oversized_record == "fail"
    assert s.dead_letter_path is None
    assert s.preflight_check is True
    assert s.state_flush_seconds == 60
    assert s.ordering == "none"
    assert (s.connect_timeout, s.read_timeout) == (10, 60)
    assert s.newline("firehose") is True
    assert s.newline("kinesis") is False


def test_region_defaults_to_aws_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    assert settings(stream_name="s").region == "eu-west-3"
    assert settings(stream_name="s", region="ap-south-1").region == "ap-south-1"


def test_region_follows_the_aws_cli_order(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """The setting, AWS_REGION, AWS_DEFAULT_REGION, the profile's region, then us-east-1."""
    config_file = tmp_path / "config"
    config_file.write_text(
        "[default]\nregion = ap-northeast-1\n[profile analytics]\nregion = eu-west-2\n[profile bare]\n"
    )
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config_file))

    def where(**config: object) -> tuple[str, str]:
        s = settings(stream_name="s", **config)
        return s.region, s.region_source

    assert where(aws_profile="analytics") == ("eu-west-2", "profile 'analytics' of the AWS config file")
    assert where() == ("ap-northeast-1", "profile 'default' of the AWS config file")
    monkeypatch.setenv("AWS_PROFILE", "analytics")
    assert where() == ("eu-west-2", "profile 'analytics' of the AWS config file")
    assert where(aws_profile="bare") == ("us-east-1", "the default: no region setting, AWS_REGION or profile region")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "sa-east-1")
    assert where(aws_profile="analytics") == ("sa-east-1", "the AWS_DEFAULT_REGION environment variable")
    monkeypatch.setenv("AWS_REGION", "eu-north-1")
    assert where(aws_profile="analytics") == ("eu-north-1", "the AWS_REGION environment variable")
    assert where(region="us-west-2") == ("us-west-2", "setting 'region'")
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(ConfigError, match="setting 'aws_profile': profile 'nope' not found"):
        where(aws_profile="nope")
    monkeypatch.setenv("AWS_PROFILE", "gone")
    with pytest.raises(ConfigError, match="the AWS_PROFILE environment variable: profile 'gone' not found"):
        where()


@pytest.mark.parametrize("setting", ["hash_fields", "exclude_fields"])
def test_a_privacy_path_into_no_part_of_an_event_is_refused(setting: str) -> None:
    with pytest.raises(ConfigError) as refused:
        settings(stream_name="s", **{setting: ["traits.phone", "email"]})
    assert str(refused.value).startswith(f"setting '{setting}': 'email' matches nothing")
    assert str(refused.value).endswith("paths that would match: traits.email, properties.email, context.traits.email")


def test_a_passthrough_mapping_lets_a_privacy_path_name_a_record_field() -> None:
    # A passthrough record keeps its own top-level fields (user_id beside userId), so a path
    # into one of them can match; the end-of-run warning still covers one that did not.
    events = {"page_views": {"type": "passthrough", "user_id_field": "user_id"}}
    s = settings(stream_name="s", events=events, exclude_fields=["user_id", "_sdc_stream"])
    assert s.exclude_fields == ("user_id", "_sdc_stream")
    with pytest.raises(ConfigError, match="'user_id' matches nothing"):
        settings(stream_name="s", events={"page_views": {"type": "track"}}, exclude_fields=["user_id"])


def test_append_newline_overrides_the_service_default() -> None:
    s = settings(stream_name="s", append_newline=False)
    assert s.newline("firehose") is False
    assert settings(stream_name="s", append_newline=True).newline("kinesis") is True


def test_max_retries_zero_is_kept() -> None:
    assert settings(stream_name="s", max_retries=0).max_retries == 0


# -- secrets never appear in error messages -----------------------------------------------------------

SECRETS = {"aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": SECRET, "aws_session_token": SECRET + "-token"}


@pytest.mark.parametrize(
    "config",
    [
        {**SECRETS},  # no stream
        {**SECRETS, "stream_name": "bad name!"},
        {**SECRETS, "stream_name": "s", "max_batch_bytes": 11 * MIB},
        {**SECRETS, "stream_name": "s", "service": "firehose", "max_record_bytes": 2 * MIB},
        {**SECRETS, "stream_name": "s", "on_oversized_record": "dead_letter"},
        {**SECRETS, "stream_name": "s", "events": {"orders": {"bogus": SECRET}}},
        {"stream_name": "s", "aws_secret_access_key": SECRET},  # secret without access key id
        {"stream_name": "s", "external_id": SECRET},  # external_id without role_arn
        {**SECRETS, "stream_name": "s", "role_arn": "arn:aws:iam::1:role/r", "external_id": SECRET, "service": "sqs"},
    ],
)
def test_config_errors_never_contain_a_secret(config: dict) -> None:
    message = config_error(**config)
    assert SECRET not in message
    assert SECRET not in repr(ConfigError(message))


def test_settings_repr_hides_secrets() -> None:
    s = settings(
        stream_name="s",
        aws_access_key_id="AKIAEXAMPLE",
        aws_secret_access_key=SECRET,
        aws_session_token=SECRET + "-t",
        role_arn="arn:aws:iam::1:role/r",
        external_id=SECRET + "-x",
    )
    assert s.aws_secret_access_key == SECRET
    assert s.external_id == SECRET + "-x"
    assert SECRET not in repr(s)
    assert SECRET not in str(s)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("aws_secret_access_key", [SECRET]),
        ("aws_secret_access_key", {"value": SECRET}),
        ("aws_secret_access_key", SECRET_NUMBER),
        ("aws_session_token", [SECRET]),
        ("aws_session_token", SECRET_NUMBER),
        ("external_id", SECRET_NUMBER),
        ("external_id", {"id": SECRET}),
    ],
)
def test_wrong_type_for_a_secret_is_reported_without_its_value(
    name: str, value: object, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {
        "stream_name": "s",
        "aws_access_key_id": "AKIAEXAMPLE",
        "aws_secret_access_key": "placeholder",
        "role_arn": "arn:aws:iam::1:role/r",
        name: value,
        # A second, non-secret error in the same config: both are reported, neither quotes a secret.
        "max_retries": "ten",
    }
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError) as info:
        TargetKinesis(config=config)
    message = str(info.value)
    assert name in message  # the setting is named ...
    assert "max_retries" in message
    for leaked in (SECRET, str(SECRET_NUMBER)):  # ... its value never
        assert leaked not in message
        assert leaked not in caplog.text
        captured = capsys.readouterr()
        assert leaked not in captured.out
        assert leaked not in captured.err


def test_bad_enum_value_of_a_non_secret_lists_the_allowed_values() -> None:
    with pytest.raises(ConfigError) as info:
        TargetKinesis(config={"stream_name": "s", "ordering": "strict", "aws_secret_access_key": SECRET})
    message = str(info.value)
    assert "ordering" in message
    assert "per_key" in message
    assert SECRET not in message


def test_target_config_rules_are_checked_at_start_up() -> None:
    with pytest.raises(ConfigError) as info:
        TargetKinesis(config={"stream_name": "bad name", "aws_secret_access_key": SECRET, "aws_access_key_id": "A"})
    assert "stream_name" in str(info.value)
    assert SECRET not in str(info.value)


def test_mapping_processes_default_follows_the_cpus_a_container_may_use(tmp_path, monkeypatch) -> None:
    import os

    from target_kinesis.config import settings as settings_module
    from target_kinesis.config.settings import usable_cpus

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    limits = tmp_path / "cpu.max"
    limits.write_text("max 100000\n")
    assert usable_cpus(str(limits)) == 16
    limits.write_text("150000 100000\n")  # 1.5 CPUs
    assert usable_cpus(str(limits)) == 2
    limits.write_text("100000 100000\n")
    assert usable_cpus(str(limits)) == 1
    assert usable_cpus(str(tmp_path / "absent")) == 16
    monkeypatch.setattr(settings_module, "usable_cpus", lambda: 1)
    assert settings_module.mapping_processes_for(None) == 0, "one CPU: everything in one process"
    monkeypatch.setattr(settings_module, "usable_cpus", lambda: 16)
    assert settings_module.mapping_processes_for(None) == 4
    assert settings_module.mapping_processes_for(0) == 0 and settings_module.mapping_processes_for(3) == 3


KINESIS = Destination("kinesis", "k")


def _settings(**config: object) -> Settings:
    return Settings.from_config({"stream_name": "k", **config})


def test_size_limits() -> None:
    assert _settings().size_limits(KINESIS, None) == (MIB, 5 * MIB)
    assert _settings().size_limits(KINESIS, 8 * MIB) == (8 * MIB, 8 * MIB), "a raised stream: calls grow to fit"
    assert _settings(max_record_bytes=100, max_batch_bytes=100).size_limits(KINESIS, None) == (100, 100)
    with pytest.raises(ConfigError, match=r"'max_batch_bytes' \(100\) is below max_record_bytes \(200 bytes\)"):
        _settings(max_record_bytes=200, max_batch_bytes=100).size_limits(KINESIS, None)
    with pytest.raises(ConfigError, match=r"below the largest record kinesis:k accepts \(1048576 bytes\)"):
        _settings(max_batch_bytes=100).size_limits(KINESIS, None)


def test_unknown_setting_names_the_nearest() -> None:
    known = ["hash_fields", "partition_key", "stream_name"]
    assert "did you mean 'hash_fields'?" in unknown_setting("hash_feilds", known)
    assert "--about lists every setting" in unknown_setting("zzz", known)


def test_top_level_aggregation_applies_to_its_services_destinations() -> None:
    settings = Settings.from_config(
        {
            "aggregation": "kpl",
            "destinations": [
                {"event": "*", "stream": "k", "service": "kinesis"},
                {"event": "*", "stream": "f", "service": "firehose"},
            ],
        }
    )
    assert settings.aggregation_for(Destination("kinesis", "k")) == "kpl"
    assert settings.aggregation_for(Destination("firehose", "f")) == "none", "kpl is not a Firehose form"


def test_a_rule_sets_its_destinations_aggregation() -> None:
    settings = Settings.from_config(
        {
            "destinations": [
                {"event": "*", "stream": "f", "service": "firehose", "aggregation": "lines"},
                {"event": "*", "stream": "k", "service": "kinesis", "aggregation": "none"},
            ],
            "aggregation": "kpl",
        }
    )
    assert settings.aggregation_for(Destination("firehose", "f")) == "lines"
    assert settings.aggregation_for(Destination("kinesis", "k")) == "none", "the rule's own word wins"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"stream_name": "s", "aggregation": "lines"}, "setting 'aggregation': lines is for firehose streams"),
        (
            {"destinations": [{"event": "*", "stream": "s", "aggregation": "kpl", "service": "firehose"}]},
            "setting 'destinations[0].aggregation': kpl is not for firehose streams",
        ),
        (
            {
                "destinations": [
                    {"event": "a", "stream": "s", "aggregation": "kpl"},
                    {"event": "b", "stream": "s", "aggregation": "none"},
                ]
            },
            "setting 'destinations[1].aggregation': kinesis:s is given both kpl and none",
        ),
        ({"stream_name": "s", "aggregation_max_bytes": 10}, "setting 'aggregation_max_bytes' must be at least 1024"),
    ],
)
def test_aggregation_that_cannot_be_is_refused(config: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Settings.from_config(config)
