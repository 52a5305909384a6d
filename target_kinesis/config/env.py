"""The target's config from `TARGET_KINESIS_<SETTING>` environment variables.

What Meltano hands a plugin command (`meltano invoke target-kinesis:tail`): every setting the
project configures, exported as `TARGET_KINESIS_<NAME>` (the name upper-cased), as text:
strings as they are, integers as digits, booleans as `true`/`false`, arrays and objects as
JSON. Meltano flattens an object setting before exporting it: `events: {orders: {type: track}}`
arrives as `{"orders.type": "track"}`, a literal dot in a key escaped as `\\.`; such keys are
nested again here, as Meltano does for the config file it writes. The operator tools read them
with `--config ENV` (the Singer SDK's spelling for the target itself), so no config file of
secrets is written for them.

Only the target's own settings (config/schema.py) are read; any other `TARGET_KINESIS_*`
variable (the Singer SDK's built-ins, Meltano's extras) is ignored, since the tools use none.
Errors name the variable and what it should hold, never its value (it may be a secret).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

from target_kinesis.config.schema import PROPERTIES
from target_kinesis.errors import ConfigError

ENV_PREFIX = "TARGET_KINESIS_"
_TRUE = frozenset({"true", "1", "yes", "on", "t", "y"})
_FALSE = frozenset({"false", "0", "no", "off", "f", "n"})
#: A dot that separates the levels of a key Meltano flattened (not one escaped as `\.`).
_SEPARATOR = re.compile(r"(?<!\\)\.")


def env_var(name: str) -> str:
    """The environment variable of setting `name`."""
    return ENV_PREFIX + name.upper().replace("-", "_")


def config_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The settings of config/schema.py that `environ` (default: os.environ) sets."""
    environ = os.environ if environ is None else environ
    config: dict[str, Any] = {}
    for name, schema in PROPERTIES.items():
        variable = env_var(name)
        if variable in environ:
            config[name] = _value(variable, environ[variable], schema)
    return config


def _value(variable: str, text: str, schema: Mapping[str, Any]) -> Any:
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    kinds = [kind for kind in kinds if kind != "null"]
    if "string" in kinds:
        return text  # strings, and the seconds settings (numbers also accepted as numeric text)
    (kind,) = kinds
    stripped = text.strip()
    if kind == "integer":
        try:
            return int(stripped)
        except ValueError:
            raise ConfigError(f"{variable} must be a whole number") from None
    if kind == "number":
        try:
            return float(stripped)
        except ValueError:
            raise ConfigError(f"{variable} must be a number") from None
    if kind == "boolean":
        if stripped.lower() in _TRUE:
            return True
        if stripped.lower() in _FALSE:
            return False
        raise ConfigError(f"{variable} must be true or false")
    expected = {"array": list, "object": dict}[kind]
    try:
        value = json.loads(text)
    except ValueError:
        raise ConfigError(f"{variable} must be a JSON {kind}") from None
    if not isinstance(value, expected):
        raise ConfigError(f"{variable} must be a JSON {kind}, not a {type(value).__name__}")
    return _nested(variable, value) if isinstance(value, dict) else value


def _nested(variable: str, flat: dict[str, Any]) -> dict[str, Any]:
    """An object Meltano flattened (`{"orders.type": "track"}`) nested again."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = [part.replace("\\.", ".") for part in _SEPARATOR.split(key)]
        level = nested
        for part in parents:
            level = level.setdefault(part, {})
            if not isinstance(level, dict):
                raise ConfigError(f"{variable}: key '{key}' goes below a value that is not an object")
        if isinstance(level.get(leaf), dict) and isinstance(value, dict):
            level[leaf].update(value)
        else:
            level[leaf] = value
    return nested
