"""Reading a config file (config/files.py)."""

from __future__ import annotations

import pytest

from target_kinesis.config.files import read_config_file
from target_kinesis.errors import ConfigError


def test_config_file_problems(tmp_path) -> None:
    (tmp_path / "bad.json").write_text('{"a": ')
    with pytest.raises(ConfigError, match="is not valid JSON: line 1"):
        read_config_file(str(tmp_path / "bad.json"))
    (tmp_path / "secret.json").write_text('["s3cr3t-value"]')
    with pytest.raises(ConfigError) as info:
        read_config_file(str(tmp_path / "secret.json"))
    assert "s3cr3t" not in str(info.value)
