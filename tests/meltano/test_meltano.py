"""target-kinesis under Meltano: meltano.yml matches the target, and a real `meltano run` works.

The end-to-end test builds a throw-away Meltano project from the repo's meltano.yml and
sample data, installs both plugins with Meltano (uv backend), runs
`meltano run tap-jsonl target-kinesis` against moto's Kinesis with every connection
setting given only as a `TARGET_KINESIS_*` env var, and judges the run by what the stream
holds and what state Meltano stored. Meltano itself comes from `.cache/meltano-venv`
(tests/support/meltano.py); a warm run takes about 40 s, a cold one (building that venv
and filling uv's cache) about a minute more.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from target_kinesis.config.schema import CONFIG_SCHEMA, SECRET_SETTINGS
from tests.support.meltano import ensure_meltano, meltano_env
from tests.support.readback import KinesisRecord, create_kinesis_stream, read_kinesis, unique_name
from tests.support.servers import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, boto_client
from tests.support.target_cli import TARGET

REPO_ROOT = Path(__file__).resolve().parents[2]
MELTANO_YML = REPO_ROOT / "meltano.yml"
PLUGIN_DEFINITION = REPO_ROOT / "plugin" / "target-kinesis.yml"
SAMPLE_DIR = REPO_ROOT / "sample_data"
SAMPLE_FILE = Path("sample_data/jsonl/page_views.jsonl")  # relative to the project
STATE_ID = "dev:tap-jsonl-to-target-kinesis"  # <environment>:<extractor>-to-<loader>
RUN_TIMEOUT_S = 300

# Columns of the sample rows that meltano.yml maps onto event fields, plus tap-jsonl's
# metadata columns: none of them may reach the stream.
SOURCE_ONLY = {"user_id", "anonymous_id", "message_id", "_sdc_last_modified", "_sdc_filename", "_sdc_stream"}

# The sample file's mtime is set explicitly: tap-jsonl's bookmark is the file's mtime
# (whole seconds, UTC), so fixed times make the stored state predictable.
FIRST_MTIME = dt.datetime(2024, 5, 6, 12, 0, 0, tzinfo=dt.timezone.utc)
SECOND_MTIME = FIRST_MTIME + dt.timedelta(hours=1)

NEW_ROWS = [
    {
        "message_id": "3f9a4c1e-7b2d-5e8f-9a01-c4d5e6f70811",
        "user_id": "u_1004",
        "event": "Page Viewed",
        "timestamp": "2024-05-07T08:00:12Z",
        "properties": {"path": "/", "url": "https://shop.example.com/", "title": "Home", "referrer": ""},
    },
    {
        "message_id": "3f9a4c1e-7b2d-5e8f-9a01-c4d5e6f70812",
        "anonymous_id": "anon-c0ffee",
        "event": "Products Searched",
        "timestamp": "2024-05-07T08:01:30Z",
        "properties": {"query": "trail socks"},
    },
    {
        "message_id": "3f9a4c1e-7b2d-5e8f-9a01-c4d5e6f70813",
        "user_id": "u_1004",
        "event": "Order Completed",
        "timestamp": "2024-05-07T08:09:51Z",
        "properties": {"order_id": "o_50311", "total": 36.0, "revenue": 36.0, "currency": "USD", "products": []},
    },
]


# -- meltano.yml and the plugin definition against the target (fast) ------------------------------------------


def _meltano_yml() -> dict[str, Any]:
    return yaml.safe_load(MELTANO_YML.read_text())


def _plugin(kind: str, name: str) -> dict[str, Any]:
    plugins = [p for p in _meltano_yml()["plugins"][kind] if p["name"] == name]
    assert len(plugins) == 1, f"meltano.yml must define {kind} {name} exactly once"
    return plugins[0]


def _expected_kind(name: str, schema: dict[str, Any]) -> str:
    if name in SECRET_SETTINGS:
        return "password"
    if "enum" in schema:
        return "options"
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    if {"number", "string"} <= set(types):
        # Seconds settings: strings in meltano.yml, since Meltano 4.4 cannot pass a
        # `decimal` set by env var; the target accepts numeric text for them.
        return "string"
    (json_type,) = [t for t in types if t != "null"]
    return {
        "string": "string",
        "integer": "integer",
        "number": "decimal",
        "boolean": "boolean",
        "array": "array",
        "object": "object",
    }[json_type]


def _definition() -> dict[str, Any]:
    return yaml.safe_load(PLUGIN_DEFINITION.read_text())


def test_meltano_yml_loader_uses_the_plugin_definition() -> None:
    """One definition: meltano.yml's loader names the variant whose lock file is the plugin file."""
    loader = _plugin("loaders", "target-kinesis")
    assert set(loader) == {"name", "variant", "pip_url", "config"}, "settings belong in plugin/target-kinesis.yml"
    assert loader["pip_url"] == "-e ."
    definition = _definition()
    assert loader["variant"] == definition["variant"]
    lock = REPO_ROOT / "plugins" / "loaders" / f"target-kinesis--{definition['variant']}.lock"
    assert json.loads(lock.read_text()) == {"plugin_type": "loaders", **definition}


def test_plugin_definition_declares_every_target_setting() -> None:
    """Meltano passes TARGET_KINESIS_<NAME> only for declared settings: all must be there."""
    definition = _definition()
    assert definition["name"] == "target-kinesis"
    assert definition["namespace"] == "target_kinesis"
    assert definition["executable"] == "target-kinesis"
    declared = {s["name"]: s for s in definition["settings"]}
    missing = sorted(set(CONFIG_SCHEMA["properties"]) - set(declared))
    assert not missing, f"plugin/target-kinesis.yml does not declare {missing}"
    for name, schema in CONFIG_SCHEMA["properties"].items():
        setting = declared[name]
        assert setting.get("label"), name
        assert setting.get("description") == schema["description"], f"{name}: description differs from schema.py"
        assert setting.get("kind") == _expected_kind(name, schema), name
        assert bool(setting.get("sensitive")) == (name in SECRET_SETTINGS), name
        if "enum" in schema:
            assert [o["value"] for o in setting["options"]] == schema["enum"], name
        if schema.get("default") is None:
            assert "value" not in setting, name
        else:
            assert str(setting["value"]) == str(schema["default"]), name


def test_plugin_definition_declares_what_about_declares() -> None:
    """Every setting and capability of --about (SDK built-ins too, with the SDK's descriptions),
    structured-logging among them so Meltano shows each log line at its level."""
    done = subprocess.run([TARGET, "--about", "--format", "json"], capture_output=True, check=True, timeout=60)
    about = json.loads(done.stdout)
    definition = _definition()
    assert [s["name"] for s in definition["settings"]] == list(about["settings"]["properties"])
    for setting in definition["settings"]:
        assert setting.get("description") == about["settings"]["properties"][setting["name"]].get("description")
    assert set(about["capabilities"]) <= set(definition["capabilities"])
    assert "structured-logging" in definition["capabilities"]
    assert definition["settings_group_validation"] == [["stream_name"], ["destinations"]]
    assert {name: c["executable"] for name, c in definition["commands"].items()} == {
        "tail": "target-kinesis-tail",
        "policy": "target-kinesis-policy",
        "redrive": "target-kinesis-redrive",
        "local": "target-kinesis-local",
    }
    assert all(c["args"] == "--config ENV" for c in definition["commands"].values())


def test_plugin_definition_is_generated_from_the_schema() -> None:
    """plugin/target-kinesis.yml and the lock file are what scripts/sync_plugin_definition.py writes."""
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "sync_plugin_definition.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_meltano_yml_extractor_reads_the_shipped_sample() -> None:
    extractor = _plugin("extractors", "tap-jsonl")
    assert extractor["pip_url"] == "tap-jsonl==0.3.1"
    assert {"catalog", "discover", "state"} <= set(extractor["capabilities"])  # else no --state
    path = extractor["config"]["path"].replace("${MELTANO_PROJECT_ROOT}", str(REPO_ROOT))
    assert (REPO_ROOT / SAMPLE_FILE) in {Path(p) for p in glob.glob(path)}
    rows = _rows(REPO_ROOT / SAMPLE_FILE)
    assert len(rows) >= 20
    assert all({"message_id", "event", "timestamp", "properties"} <= set(row) for row in rows)
    assert all(row.get("user_id") or row.get("anonymous_id") for row in rows)
    assert len({row["message_id"] for row in rows}) == len(rows)


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# -- a real meltano run (slow) --------------------------------------------------------


def _make_project(root: Path) -> Path:
    """A copy of the repo's Meltano project whose loader installs this checkout."""
    project = root / "project"
    project.mkdir()
    text, count = re.subn(r"(?m)^(\s*pip_url:\s*)-e \.\s*$", rf"\g<1>-e {REPO_ROOT}", MELTANO_YML.read_text())
    assert count == 1, "expected exactly one `pip_url: -e .` (the target-kinesis loader) in meltano.yml"
    (project / "meltano.yml").write_text(text)
    shutil.copytree(SAMPLE_DIR, project / "sample_data")
    shutil.copytree(REPO_ROOT / "plugins", project / "plugins")  # the loader's definition (lock file)
    return project


def _meltano(meltano: Path, project: Path, *args: str, env: dict[str, str]) -> str:
    """Run meltano in `project`; return stdout+stderr, or fail with its tail."""
    result = subprocess.run(
        [str(meltano), *args],
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        tail = "\n".join(result.stdout.splitlines()[-80:])
        pytest.fail(f"`meltano {' '.join(args)}` exited {result.returncode}:\n{tail}")
    return result.stdout


def _stored_state(meltano: Path, project: Path, env: dict[str, str]) -> dict[str, Any]:
    """`meltano state get` of the run's job: `meltano run` names it `<env>:<tap>-to-<target>`
    (its log says "Running job with name 'dev:tap-jsonl-to-target-kinesis'")."""
    result = subprocess.run(
        [str(meltano), "state", "get", STATE_ID],
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,  # the state JSON on stdout, logs on stderr
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0 or not result.stdout.strip():
        pytest.fail(f"`meltano state get {STATE_ID}` exited {result.returncode}:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _bookmark(state: dict[str, Any], sample: Path) -> str:
    """tap-jsonl's bookmark (file mtime) for `sample`, from the state Meltano stored."""
    stream_state = state["singer_state"]["bookmarks"]["page_views"]
    partitions = [
        p for p in stream_state["partitions"] if Path(p["context"]["_sdc_filename"]).resolve() == sample.resolve()
    ]
    assert len(partitions) == 1, stream_state
    assert partitions[0]["replication_key"] == "_sdc_last_modified"
    return partitions[0]["replication_key_value"]


def _set_mtime(path: Path, moment: dt.datetime) -> None:
    seconds = moment.timestamp()
    os.utime(path, (seconds, seconds))


def _check_event(record: KinesisRecord, row: dict[str, Any]) -> dict[str, Any]:
    """The Segment event in `record` is the one meltano.yml's mapping makes of `row`."""
    event = json.loads(record.data)
    expected_keys = {"type", "event", "messageId", "timestamp", "sentAt", "context", "properties"}
    expected_keys |= {"userId"} if row.get("user_id") else set()
    expected_keys |= {"anonymousId"} if row.get("anonymous_id") else set()
    assert set(event) == expected_keys, event
    assert not SOURCE_ONLY & set(event)
    assert event["type"] == "track"
    assert event["event"] == row["event"]
    assert event["messageId"] == row["message_id"]
    assert event["timestamp"] == row["timestamp"]
    assert event["properties"] == row["properties"]
    assert event.get("userId") == row.get("user_id")
    assert event.get("anonymousId") == row.get("anonymous_id")
    assert event["context"]["library"]["name"] == "target-kinesis"
    dt.datetime.fromisoformat(event["sentAt"].replace("Z", "+00:00"))
    # partition_key: userId (meltano.yml), falling back to anonymousId as Segment does.
    assert record.partition_key == (row.get("user_id") or row["anonymous_id"])
    return event


@pytest.mark.e2e
@pytest.mark.slow
def test_meltano_run_tap_jsonl_to_kinesis(tmp_path: Path, moto_server: Any) -> None:
    meltano = ensure_meltano()
    project = _make_project(tmp_path)
    sample = project / SAMPLE_FILE
    _meltano(meltano, project, "install", env=meltano_env())

    client = boto_client("kinesis", moto_server.url)
    stream = unique_name("meltano")
    create_kinesis_stream(client, stream, shards=2)
    # Connection and credentials only as TARGET_KINESIS_* env vars: meltano_env() removes
    # every AWS_* variable and the AWS config files, and meltano.yml's dev environment names
    # another stream and no endpoint, so the run only works if Meltano passes these on.
    env = meltano_env(
        {
            "TARGET_KINESIS_ENDPOINT_URL": moto_server.url,
            "TARGET_KINESIS_STREAM_NAME": stream,
            "TARGET_KINESIS_AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "TARGET_KINESIS_AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "TARGET_KINESIS_REGION": REGION,
        },
        keep_proxies=False,  # the run talks to 127.0.0.1 only
    )

    # -- first run: every row lands, Meltano stores the target's final state
    rows = _rows(sample)
    _set_mtime(sample, FIRST_MTIME)
    log = _meltano(meltano, project, "--log-level=debug", "run", "tap-jsonl", "target-kinesis", env=env)
    assert f"Running job with name '{STATE_ID}'" in log
    assert "No state was found" in log

    records = read_kinesis(client, stream)  # every shard
    assert len(records) == len(rows), [r.data for r in records]
    by_id = {row["message_id"]: row for row in rows}
    first_events = {}
    for record in records:
        event = _check_event(record, by_id[json.loads(record.data)["messageId"]])
        first_events[event["messageId"]] = event
    assert set(first_events) == set(by_id)

    first_bookmark = _bookmark(_stored_state(meltano, project, env), sample)
    assert first_bookmark == FIRST_MTIME.isoformat()

    # -- second run: new rows appended; Meltano hands the stored state to the tap
    with sample.open("a") as file:
        file.writelines(json.dumps(row) + "\n" for row in NEW_ROWS)
    _set_mtime(sample, SECOND_MTIME)
    log = _meltano(meltano, project, "--log-level=debug", "run", "tap-jsonl", "target-kinesis", env=env)
    invocation = next(line for line in log.splitlines() if "Invoking:" in line and "tap-jsonl'" in line)
    assert "'--state'" in invocation, invocation
    assert f"Starting incremental sync with bookmark value: {first_bookmark}" in log

    # What tap-jsonl 0.3.1 does with that state: it bookmarks each file's mtime and means to
    # skip files not modified since, but its check reads the key `_sdc_last_modified` from
    # the partition state while the SDK stores `replication_key_value` there, so the check
    # never fires (it logs `last_bookmark=None`) and every matching file is read again in
    # full; `start_line` (the advertised "line" strategy) is never used. So the second run
    # re-sends the 20 old rows plus the new ones. The mapping takes messageId from the
    # row's `message_id`, so the re-sent events are identical apart from sentAt and a
    # consumer can drop them as duplicates; resuming at the line level would need a tap
    # that implements it.
    records = read_kinesis(client, stream)
    all_rows = {**by_id, **{row["message_id"]: row for row in NEW_ROWS}}
    counts = Counter(json.loads(record.data)["messageId"] for record in records)
    new_ids = [row["message_id"] for row in NEW_ROWS]
    assert counts == Counter({**dict.fromkeys(by_id, 2), **dict.fromkeys(new_ids, 1)})
    for record in records:
        event = _check_event(record, all_rows[json.loads(record.data)["messageId"]])
        if event["messageId"] in first_events:
            first = first_events[event["messageId"]]
            assert {k: v for k, v in event.items() if k != "sentAt"} == {
                k: v for k, v in first.items() if k != "sentAt"
            }

    assert _bookmark(_stored_state(meltano, project, env), sample) == SECOND_MTIME.isoformat()
