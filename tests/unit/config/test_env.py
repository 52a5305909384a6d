"""config/env.py: the target's config from TARGET_KINESIS_<SETTING> variables (Meltano's commands)."""

from __future__ import annotations

import json

import pytest

from target_kinesis.config.env import config_from_env, env_var
from target_kinesis.config.schema import PROPERTIES
from target_kinesis.config.settings import Settings
from target_kinesis.errors import ConfigError
from target_kinesis.tools.cli import ToolError, read_config


def test_every_kind_is_read_as_meltano_exports_it() -> None:
    """Meltano exports strings as they are, integers as digits, booleans as true/false and
    arrays/objects as JSON (SettingDefinition.stringify_value)."""
    config = config_from_env(
        {
            "TARGET_KINESIS_STREAM_NAME": "orders",
            "TARGET_KINESIS_MAX_RETRIES": "3",
            "TARGET_KINESIS_PREFLIGHT_CHECK": "false",
            "TARGET_KINESIS_SEND_ANONYMOUS_USERS": "True",
            "TARGET_KINESIS_HASH_FIELDS": '["traits.email"]',
            "TARGET_KINESIS_EVENTS": '{"orders": {"event": "Order Completed"}}',
            "TARGET_KINESIS_RETRY_BASE_DELAY": "0.5",
            "TARGET_KINESIS_AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
            "TARGET_KINESIS_AWS_SECRET_ACCESS_KEY": "s3cr3t-value",
        }
    )
    assert config == {
        "stream_name": "orders",
        "max_retries": 3,
        "preflight_check": False,
        "send_anonymous_users": True,
        "hash_fields": ["traits.email"],
        "events": {"orders": {"event": "Order Completed"}},
        "retry_base_delay": "0.5",  # numeric text, which the target accepts for seconds
        "aws_access_key_id": "AKIAEXAMPLE",
        "aws_secret_access_key": "s3cr3t-value",
    }
    settings = Settings.from_config(config)
    assert settings.max_retries == 3


def test_objects_meltano_flattened_are_nested_again() -> None:
    """Meltano exports `events: {page_views: {type: passthrough}}` as dotted keys (seen with
    `meltano invoke --print-var TARGET_KINESIS_EVENTS`); a literal dot is escaped as `\\.`."""
    flat = {
        "page_views.type": "passthrough",
        "page_views.user_id_field": "user_id",
        "page_views.include_fields": ["a", "b"],
        "public\\.orders.event": "Order Completed",
        "plain": {"type": "identify"},
    }
    config = config_from_env({"TARGET_KINESIS_EVENTS": json.dumps(flat)})
    assert config["events"] == {
        "page_views": {"type": "passthrough", "user_id_field": "user_id", "include_fields": ["a", "b"]},
        "public.orders": {"event": "Order Completed"},
        "plain": {"type": "identify"},
    }
    with pytest.raises(
        ConfigError, match=r"TARGET_KINESIS_EVENTS: key 'a\.b' goes below a value that is not an object"
    ):
        config_from_env({"TARGET_KINESIS_EVENTS": json.dumps({"a": 1, "a.b": 2})})


def test_only_the_targets_own_settings_are_read() -> None:
    """SDK built-ins and Meltano's extras (also TARGET_KINESIS_*) are not the tools' business."""
    config = config_from_env(
        {
            "TARGET_KINESIS_BATCH_SIZE_ROWS": "100",
            "TARGET_KINESIS__LOG_PARSER": "singer-sdk",
            "TARGET_KINESIS_STREAM_NAMES": "typo",
            "STREAM_NAME": "x",
        }
    )
    assert config == {}


def test_every_setting_has_its_variable() -> None:
    assert all(env_var(name) == "TARGET_KINESIS_" + name.upper() for name in PROPERTIES)
    assert env_var("role_arn") == "TARGET_KINESIS_ROLE_ARN"


@pytest.mark.parametrize(
    ("variable", "text", "message"),
    [
        ("TARGET_KINESIS_MAX_RETRIES", "three", "TARGET_KINESIS_MAX_RETRIES must be a whole number"),
        ("TARGET_KINESIS_PREFLIGHT_CHECK", "maybe", "TARGET_KINESIS_PREFLIGHT_CHECK must be true or false"),
        ("TARGET_KINESIS_EVENTS", "{not json", "TARGET_KINESIS_EVENTS must be a JSON object"),
        ("TARGET_KINESIS_EVENTS", "[1]", "TARGET_KINESIS_EVENTS must be a JSON object, not a list"),
        ("TARGET_KINESIS_DESTINATIONS", '{"a": 1}', "TARGET_KINESIS_DESTINATIONS must be a JSON array, not a dict"),
    ],
)
def test_a_bad_value_names_the_variable_not_the_value(variable: str, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_env({variable: text})
    assert str(caught.value) == message
    assert text not in str(caught.value)


def test_tools_read_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARGET_KINESIS_STREAM_NAME", "orders")
    monkeypatch.setenv("TARGET_KINESIS_REGION", "eu-west-1")
    monkeypatch.setenv("TARGET_KINESIS_ROLE_SESSION_DURATION_SECONDS", "900")
    assert read_config("ENV") == {"stream_name": "orders", "region": "eu-west-1", "role_session_duration_seconds": 900}
    monkeypatch.setenv("TARGET_KINESIS_MAX_RETRIES", "x")
    with pytest.raises(ToolError, match="TARGET_KINESIS_MAX_RETRIES must be a whole number"):
        read_config("ENV")
