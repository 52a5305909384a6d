"""Reading a config file, for the target and the operator tools alike."""

from __future__ import annotations

import json
from typing import Any

from target_kinesis.errors import ConfigError


def read_config_file(path: str) -> dict[str, Any]:
    """A JSON config file; ConfigError names the file and the problem, never a value (the
    file may hold secrets)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    if not text.strip():
        raise ConfigError(f"config file {path} is empty (it must hold a JSON object of settings)")
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"config file {path} is not valid JSON: line {getattr(exc, 'lineno', '?')}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"config file {path} must hold a JSON object of settings, not a {type(config).__name__}")
    return config
