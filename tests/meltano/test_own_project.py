"""target-kinesis added to a Meltano project of one's own, as the README's section says.

One throw-away project for the module (one `meltano init`, one `meltano install`): the loader
is added with `meltano add --plugin-type loader --from-ref plugin/target-kinesis.yml
target-kinesis`, its pip_url pointed at this checkout (the README's line), configured with
`meltano config set`, and then:

* `meltano run tap-jsonl target-kinesis` writes the sample to moto's Kinesis;
* `meltano invoke target-kinesis:tail` and `:policy` run with the project's configuration
  (TARGET_KINESIS_* env vars, `--config ENV`) and no config file;
* a fatal error (a stream that does not exist) shows in `meltano run`'s log at level error,
  because the definition declares `structured-logging` (without it, at info: checked too);
* what Meltano does with undeclared settings and with an object setting set by env var.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.meltano import ensure_meltano, meltano_env
from tests.support.readback import create_kinesis_stream, read_kinesis, unique_name
from tests.support.servers import ACCESS_KEY_ID, REGION, boto_client

# scripts/test.sh runs `--dist loadfile`: a module's tests share one worker, so the shared
# project (a module fixture) is built once.
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DEFINITION = REPO_ROOT / "plugin" / "target-kinesis.yml"
SAMPLE = REPO_ROOT / "sample_data" / "jsonl" / "page_views.jsonl"
RUN_TIMEOUT_S = 300
#: moto checks no credentials; a value of its own, so the test can look for it in files.
SECRET_ACCESS_KEY = "own-project-secret-4f1e9c"

EVENTS = {
    "page_views": {
        "type": "passthrough",
        "user_id_field": "user_id",
        "anonymous_id_field": "anonymous_id",
        "message_id_field": "message_id",
    }
}
EXCLUDE = ["user_id", "anonymous_id", "message_id", "_sdc_last_modified", "_sdc_filename", "_sdc_stream"]


@dataclass
class Project:
    meltano: Path
    root: Path
    stream: str
    client: Any

    def run(
        self, *args: str, extra_env: dict[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """`meltano ARGS` in the project, talking to 127.0.0.1 only; stdout and stderr apart."""
        return self._meltano(args, meltano_env(extra_env, keep_proxies=False), check=check)

    def _meltano(self, args: tuple[str, ...], env: dict[str, str], *, check: bool) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.meltano), *args],
            cwd=self.root,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
        if check and result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-60:])
            pytest.fail(f"`meltano {' '.join(args)}` exited {result.returncode}:\n{tail}")
        return result


def _tap_jsonl_definition(path: Path) -> Path:
    """The repo's inline tap-jsonl definition as a file to add --from-ref (no Meltano Hub here)."""
    repo = yaml.safe_load((REPO_ROOT / "meltano.yml").read_text())
    (tap,) = [p for p in repo["plugins"]["extractors"] if p["name"] == "tap-jsonl"]
    tap = {key: value for key, value in tap.items() if key != "config"}
    path.write_text(yaml.safe_dump(tap, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, moto_server: Any) -> Iterator[Project]:
    meltano = ensure_meltano()
    base = tmp_path_factory.mktemp("own-meltano")
    install_env = meltano_env()  # keeps proxies: `meltano install` may need PyPI
    subprocess.run(
        [str(meltano), "init", "own", "--no_usage_stats"],
        cwd=base,
        env=install_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=True,
        timeout=RUN_TIMEOUT_S,
    )
    root = base / "own"
    client = boto_client("kinesis", moto_server.url)
    stream = unique_name("own-meltano")
    create_kinesis_stream(client, stream, shards=2)
    own = Project(meltano, root, stream, client)

    # The README's steps: add from the definition file, point pip_url at a local clone.
    own._meltano(
        ("add", "--plugin-type", "loader", "--from-ref", str(PLUGIN_DEFINITION), "target-kinesis", "--no-install"),
        install_env,
        check=True,
    )
    text, count = re.subn(
        r"(?m)^(\s*pip_url:\s*)git\+https://github\.com/target-kinesis/target-kinesis\.git\s*$",
        rf"\g<1>-e {REPO_ROOT}",
        (root / "meltano.yml").read_text(),
    )
    assert count == 1, "meltano add did not copy the definition's pip_url into meltano.yml"
    (root / "meltano.yml").write_text(text)
    tap_file = _tap_jsonl_definition(base / "tap-jsonl.yml")
    own._meltano(
        ("add", "--plugin-type", "extractor", "--from-ref", str(tap_file), "tap-jsonl", "--no-install"),
        install_env,
        check=True,
    )
    (root / "data").mkdir()
    shutil.copy(SAMPLE, root / "data" / "page_views.jsonl")
    settings = [
        ("tap-jsonl", "path", str(root / "data" / "*.jsonl")),
        ("tap-jsonl", "stream_name", "page_views"),
        ("target-kinesis", "stream_name", stream),
        ("target-kinesis", "region", REGION),
        ("target-kinesis", "endpoint_url", moto_server.url),
        ("target-kinesis", "aws_access_key_id", ACCESS_KEY_ID),
        ("target-kinesis", "aws_secret_access_key", SECRET_ACCESS_KEY),
        ("target-kinesis", "events", json.dumps(EVENTS)),
        ("target-kinesis", "exclude_fields", json.dumps(EXCLUDE)),
        ("target-kinesis", "partition_key", "userId"),
        ("target-kinesis", "max_concurrent_requests", "1"),  # moto loses records over parallel connections
    ]
    for plugin, name, value in settings:
        own._meltano(("config", "set", plugin, name, value), install_env, check=True)
    own._meltano(("install",), install_env, check=True)
    yield own


def _rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]


def _json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            lines.append(value)
    return lines


def test_added_definition_keeps_settings_and_commands(project: Project) -> None:
    loader = next(
        p
        for p in yaml.safe_load((project.root / "meltano.yml").read_text())["plugins"]["loaders"]
        if p["name"] == "target-kinesis"
    )
    definition = yaml.safe_load(PLUGIN_DEFINITION.read_text())
    assert "structured-logging" in loader["capabilities"]
    assert {s["name"] for s in loader["settings"]} == {s["name"] for s in definition["settings"]}
    assert set(loader["commands"]) == {"tail", "policy", "redrive", "local"}
    # The secret went to .env, not to meltano.yml.
    assert SECRET_ACCESS_KEY not in (project.root / "meltano.yml").read_text()
    assert SECRET_ACCESS_KEY in (project.root / ".env").read_text()


def test_run_then_tail_and_policy_with_the_projects_config(project: Project) -> None:
    project.run("run", "tap-jsonl", "target-kinesis")
    rows = _rows()
    records = read_kinesis(project.client, project.stream)
    assert sorted(json.loads(r.data)["messageId"] for r in records) == sorted(r["message_id"] for r in rows)

    # `meltano invoke target-kinesis:tail`: --config ENV, the config as TARGET_KINESIS_* env vars.
    tail = project.run("invoke", "target-kinesis:tail", "--stream", project.stream)
    events = [json.loads(line) for line in tail.stdout.splitlines() if line.strip()]
    assert sorted(e["messageId"] for e in events) == sorted(r["message_id"] for r in rows)
    assert all(not {"user_id", "_sdc_filename"} & set(e) for e in events)

    policy = project.run("invoke", "target-kinesis:policy", "--permissions-only")
    document = json.loads(policy.stdout)
    resources = json.dumps(document)
    assert f"stream/{project.stream}" in resources
    assert "kinesis:PutRecords" in resources

    # No config file of secrets stays behind (Meltano removes the one it writes for the target).
    left = [p for p in (project.root / ".meltano").rglob("*") if p.is_file() and p.suffix in (".json", "")]
    assert not [p for p in left if SECRET_ACCESS_KEY in p.read_text(errors="replace")], left


def _target_error_lines(log: str, stream: str) -> list[dict[str, Any]]:
    """The target's own line about the missing stream, as Meltano logged it (--log-format=json)."""
    return [
        line
        for line in _json_lines(log)
        if f"'{stream}'" in str(line.get("event")) and "does not exist" in str(line.get("event"))
    ]


def test_a_fatal_error_shows_at_error_level(project: Project) -> None:
    missing = unique_name("missing")
    env = {"TARGET_KINESIS_STREAM_NAME": missing}
    done = project.run("--log-format=json", "run", "tap-jsonl", "target-kinesis", extra_env=env, check=False)
    assert done.returncode != 0
    lines = _target_error_lines(done.stdout + done.stderr, missing)
    assert lines, (done.stdout + done.stderr)[-4000:]
    assert {line["level"] for line in lines} == {"error"}, lines

    # Without structured-logging Meltano shows the same line at info: the capability is what
    # makes the level right (so this test fails if the definition loses it).
    meltano_yml = project.root / "meltano.yml"
    original = meltano_yml.read_text()
    try:
        without = original.replace("\n    - structured-logging\n", "\n", 1)
        if without == original:
            without = original.replace("\n  - structured-logging\n", "\n", 1)
        assert without != original
        meltano_yml.write_text(without)
        done = project.run("--log-format=json", "run", "tap-jsonl", "target-kinesis", extra_env=env, check=False)
        assert done.returncode != 0
        lines = _target_error_lines(done.stdout + done.stderr, missing)
        assert lines and {line["level"] for line in lines} == {"info"}, lines
    finally:
        meltano_yml.write_text(original)


def test_undeclared_setting_is_passed_and_refused_with_the_nearest_name(project: Project) -> None:
    """`meltano config set` takes a name the definition does not declare and passes it on; the
    target refuses it and names the setting meant."""
    project.run("config", "set", "target-kinesis", "stream_nam", "typo")
    try:
        dumped = json.loads(project.run("invoke", "--dump=config", "target-kinesis").stdout)
        assert dumped["stream_nam"] == "typo"
        done = project.run("run", "tap-jsonl", "target-kinesis", check=False)
        assert done.returncode != 0
        assert "setting 'stream_nam' is not a target-kinesis setting (did you mean 'stream_name'?)" in (
            done.stdout + done.stderr
        )
    finally:
        project.run("config", "unset", "target-kinesis", "stream_nam")


def test_object_setting_by_env_var_is_merged(project: Project) -> None:
    """TARGET_KINESIS_EVENTS adds to meltano.yml's `events` key by key (what the target gets);
    a command sees the variable as it was set."""
    extra = {"orders": {"event": "Order Completed"}}
    env = {"TARGET_KINESIS_EVENTS": json.dumps(extra)}
    dumped = json.loads(project.run("invoke", "--dump=config", "target-kinesis", extra_env=env).stdout)
    assert dumped["events"] == {**extra, **EVENTS}
    # The command gets the variable unmerged: `events` without page_views, so the tail refuses
    # meltano.yml's exclude_fields (they match nothing without page_views' passthrough spec).
    printed = project.run(
        "invoke",
        "--print-var",
        "TARGET_KINESIS_EVENTS",
        "target-kinesis:tail",
        "--stream",
        project.stream,
        "--limit",
        "1",
        extra_env=env,
        check=False,
    )
    assert f"TARGET_KINESIS_EVENTS={json.dumps(extra)}" in printed.stdout
    assert printed.returncode != 0
    assert "setting 'exclude_fields': 'user_id' matches nothing" in printed.stdout + printed.stderr
