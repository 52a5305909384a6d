"""What the operator tools share: their argument parser, their error, and reading the target's config."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any, NoReturn

from target_kinesis.config.env import ENV_PREFIX, config_from_env
from target_kinesis.config.files import read_config_file
from target_kinesis.config.settings import Settings
from target_kinesis.errors import ConfigError


class ToolError(Exception):
    """A failure a tool stops on; the message is one line, free of secrets."""


class UsageError(ToolError):
    """Arguments that cannot go together, found only once the config is read: exit 2, as argparse's."""


def usage_line(prog: str, message: str) -> str:
    """A usage error as ToolParser prints it (one line, pointing at --help)."""
    return f"{prog}: error: {message} (see --help)\n"


class ToolParser(argparse.ArgumentParser):
    """argparse, with its errors as one line that points at --help (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, usage_line(self.prog, message))


#: `--config ENV`: the settings from TARGET_KINESIS_<NAME> environment variables, as Meltano
#: exports them to a plugin command (and as the target itself reads `--config ENV`).
ENV_CONFIG = "ENV"
CONFIG_HELP = (
    f"the target's config.json, or {ENV_CONFIG} to read the settings from {ENV_PREFIX}<SETTING> environment "
    "variables (what `meltano invoke target-kinesis:<command>` exports)"
)


def read_config(path: str) -> dict[str, Any]:
    """The target's config file, as the target reads it; `ENV`: from TARGET_KINESIS_* variables."""
    try:
        if path == ENV_CONFIG:
            return config_from_env()
        return read_config_file(path)
    except ConfigError as exc:
        raise ToolError(str(exc)) from None


def settings_of(config: Mapping[str, Any]) -> Settings:
    """The config checked as the target checks it (its own settings; the SDK's are ignored)."""
    try:
        return Settings.from_config(config)
    except ConfigError as exc:
        raise ToolError(str(exc)) from None
