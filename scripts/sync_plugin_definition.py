#!/usr/bin/env python
"""Write target-kinesis's Meltano plugin definition from the settings schema and `--about`.

One definition, two files, both generated here and never edited by hand:

* ``plugin/target-kinesis.yml``: the Meltano Hub-format definition users add to a project of
  their own (``meltano add --plugin-type loader --from-ref plugin/target-kinesis.yml target-kinesis``);
* ``plugins/loaders/target-kinesis--target-kinesis.lock``: the same definition as the lock file
  Meltano reads for this repo's own ``meltano.yml``, whose loader names only the variant, the
  ``pip_url`` (``-e .``) and its config.

Settings come from ``target-kinesis --about`` (config/schema.py plus the Singer SDK's built-ins)
with the schema's descriptions and defaults; secrets (``secret`` in the schema) are ``kind:
password`` and ``sensitive: true``. Capabilities are everything ``--about`` declares
(``structured-logging`` included: Meltano then asks for JSON logs and shows each line at its
level). tests/meltano/test_plugin_definition.py fails when either file is stale.

    .venv/bin/python scripts/sync_plugin_definition.py           # rewrite both files
    .venv/bin/python scripts/sync_plugin_definition.py --check   # exit 1 if out of date
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFINITION = REPO_ROOT / "plugin" / "target-kinesis.yml"
LOCK = REPO_ROOT / "plugins" / "loaders" / "target-kinesis--target-kinesis.lock"

#: Where this repository lives. The repo names no URL of its own; this is the one the
#: definition installs from (README "Add it to your own Meltano project").
GIT_URL = "https://github.com/target-kinesis/target-kinesis"
VARIANT = "target-kinesis"

#: A label for each of the target's own settings (the SDK's built-ins have a `title`).
LABELS = {
    "region": "AWS Region",
    "endpoint_url": "Endpoint URL",
    "service": "Default Service",
    "stream_name": "Stream Name",
    "destinations": "Destinations",
    "aws_access_key_id": "AWS Access Key ID",
    "aws_secret_access_key": "AWS Secret Access Key",
    "aws_session_token": "AWS Session Token",
    "aws_profile": "AWS Profile",
    "role_arn": "Role ARN",
    "external_id": "External ID",
    "role_session_name": "Role Session Name",
    "role_session_duration_seconds": "Role Session Duration (seconds)",
    "events": "Events",
    "exclude_fields": "Exclude Fields",
    "hash_fields": "Hash Fields",
    "send_anonymous_users": "Send Anonymous Users",
    "partition_key": "Partition Key",
    "append_newline": "Append Newline",
    "max_batch_records": "Max Batch Records",
    "max_batch_bytes": "Max Batch Bytes",
    "max_record_bytes": "Max Record Bytes",
    "max_concurrent_requests": "Max Concurrent Requests",
    "max_retries": "Max Retries",
    "retry_base_delay": "Retry Base Delay (seconds)",
    "retry_max_delay": "Retry Max Delay (seconds)",
    "on_oversized_record": "On Oversized Record",
    "dead_letter_path": "Dead Letter Path",
    "preflight_check": "Preflight Check",
    "state_flush_seconds": "State Flush Interval (seconds)",
    "rate_limit_percent": "Rate Limit (percent of each shard)",
    "max_records_per_second": "Max Records per Second",
    "max_bytes_per_second": "Max Bytes per Second",
    "stall_timeout_seconds": "Stall Timeout (seconds)",
    "drain_timeout_seconds": "Drain Timeout (seconds)",
    "aggregation": "Aggregation",
    "aggregation_max_bytes": "Aggregation Max Bytes",
    "aggregation_max_records": "Aggregation Max Records",
    "ordering": "Ordering",
    "mapping_processes": "Mapping Processes",
    "connect_timeout": "Connect Timeout (seconds)",
    "read_timeout": "Read Timeout (seconds)",
    # The Singer SDK built-in without a title of its own.
    "load_method": "Load Method",
}

#: The operator tools, run by `meltano invoke target-kinesis:<name>` with the project's
#: configuration as TARGET_KINESIS_<SETTING> env vars (`--config ENV`): no config file.
COMMANDS = {
    "tail": {
        "executable": "target-kinesis-tail",
        "args": "--config ENV",
        "description": "Print the events in a stream (Kinesis shards, or what Firehose wrote to S3); "
        "add --stream NAME, --limit N, --follow, --show-keys.",
    },
    "policy": {
        "executable": "target-kinesis-policy",
        "args": "--config ENV",
        "description": "Print the least-privilege IAM permissions policy and role trust policy for the "
        "project's configuration; add --account-id, --describe, --permissions-only or --trust-only.",
    },
    "redrive": {
        "executable": "target-kinesis-redrive",
        "args": "--config ENV",
        "description": "Send dead letters again (give a file or s3://bucket/prefix/), with the target's pacing "
        "and retries; add --stream NAME, --dead-letter-path PATH, --keep.",
    },
    "local": {
        "executable": "target-kinesis-local",
        "args": "--config ENV",
        "description": "A local endpoint (moto's server, 127.0.0.1) with every stream, delivery stream and bucket "
        "the configuration names; needs the [local] extra; add --shards N, --port P.",
    },
}

HEADER = """\
# Meltano plugin definition of target-kinesis (Meltano Hub format). GENERATED by
# scripts/sync_plugin_definition.py from target_kinesis/config/schema.py and `target-kinesis --about`:
# do not edit by hand; a test fails when this file is stale.
#
#   meltano add --plugin-type loader --from-ref plugin/target-kinesis.yml target-kinesis
#
# (or the raw URL of this file). pip_url installs from git; to install a local clone instead, set
# that loader's `pip_url:` in your meltano.yml to `-e /path/to/clone`, then `meltano install`.
"""


def about() -> dict[str, Any]:
    """`target-kinesis --about --format json`, rendered in-process."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from target_kinesis.singer.target import TargetKinesis

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        TargetKinesis.print_about("json")
    return json.loads(buffer.getvalue())


def _kinds(schema: dict[str, Any]) -> list[str]:
    kinds = schema.get("type", [])
    return [k for k in ([kinds] if isinstance(kinds, str) else kinds) if k != "null"]


def setting_kind(schema: dict[str, Any]) -> str:
    """The Meltano `kind` of one JSON-schema setting."""
    if schema.get("secret"):
        return "password"
    if "enum" in schema:
        return "options"
    kinds = _kinds(schema)
    if {"number", "string"} <= set(kinds):
        # Seconds settings: `string`, since Meltano 4.4.1 turns a `decimal` set by env var into
        # a Decimal it then cannot serialize; the target accepts numeric text ("2.5") for them.
        return "string"
    (kind,) = kinds
    return {
        "string": "string",
        "integer": "integer",
        "number": "decimal",
        "boolean": "boolean",
        "array": "array",
        "object": "object",
    }[kind]


def _label(name: str, schema: dict[str, Any]) -> str:
    if name in LABELS:
        return LABELS[name]
    if "title" in schema:
        return str(schema["title"])
    raise KeyError(f"setting '{name}' has no label: add one to LABELS in {Path(__file__).name}")


def setting(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    kind = setting_kind(schema)
    entry: dict[str, Any] = {"name": name, "kind": kind, "label": _label(name, schema)}
    if "description" in schema:
        entry["description"] = schema["description"]
    if schema.get("secret"):
        entry["sensitive"] = True
    if "enum" in schema:
        entry["options"] = [{"label": value, "value": value} for value in schema["enum"] if value is not None]
    if schema.get("default") is not None:
        default = schema["default"]
        entry["value"] = str(default) if kind == "string" and not isinstance(default, str) else default
    return entry


def definition() -> dict[str, Any]:
    """The plugin definition, as a dict in Meltano Hub's order of keys."""
    info = about()
    properties = info["settings"]["properties"]
    unlabelled = sorted(name for name, schema in properties.items() if name not in LABELS and "title" not in schema)
    if unlabelled:
        raise KeyError(f"settings without a label: {unlabelled}: add them to LABELS in {Path(__file__).name}")
    capabilities = list(info["capabilities"])
    if "structured-logging" not in capabilities:  # the SDK declares it; never lose it
        capabilities.append("structured-logging")
    return {
        "name": "target-kinesis",
        "namespace": "target_kinesis",
        "variant": VARIANT,
        "label": "Amazon Kinesis / Firehose (Segment events)",
        "description": info["description"],
        "docs": f"{GIT_URL}#readme",
        "repo": GIT_URL,
        "pip_url": f"git+{GIT_URL}.git",
        "executable": "target-kinesis",
        "capabilities": capabilities,
        # Where to write is the one thing required: exactly one of stream_name or destinations.
        # Credentials are optional (the standard AWS chain: env, profile, instance/task role).
        "settings_group_validation": [["stream_name"], ["destinations"]],
        "settings": [setting(name, schema) for name, schema in properties.items()],
        "commands": COMMANDS,
    }


def definition_yaml(plugin: dict[str, Any]) -> str:
    return HEADER + yaml.safe_dump(plugin, sort_keys=False, allow_unicode=True, width=120)


def lock_json(plugin: dict[str, Any]) -> str:
    return json.dumps({"plugin_type": "loaders", **plugin}, indent=2, ensure_ascii=False) + "\n"


def wanted_files() -> dict[Path, str]:
    plugin = definition()
    return {DEFINITION: definition_yaml(plugin), LOCK: lock_json(plugin)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in wanted_files().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if not stale:
        print("plugin definition is up to date")
        return 0
    names = ", ".join(str(p.relative_to(REPO_ROOT)) for p in stale)
    if args.check:
        print(f"out of date: {names}; run `python scripts/sync_plugin_definition.py`", file=sys.stderr)
        return 1
    print(f"written: {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
