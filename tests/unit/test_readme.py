"""The README's settings table is the one `target-kinesis --about --format=markdown` renders.

scripts/sync_readme_settings.py rewrites it; these tests run the script as CI would
(`--check`) and check the script itself on a scratch README.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from target_kinesis.config.schema import CONFIG_SCHEMA

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "sync_readme_settings.py"
README = REPO_ROOT / "README.md"
START = "<!-- settings-table:start -->"
END = "<!-- settings-table:end -->"


def _sync(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_readme_settings_table_is_up_to_date() -> None:
    text = README.read_text(encoding="utf-8") if README.exists() else ""
    if START not in text or END not in text:
        pytest.skip(f"README.md has no {START} ... {END} markers yet, so there is no settings table to check")
    result = _sync("--check")
    assert result.returncode == 0, (
        "README.md's settings table is out of date: run `.venv/bin/python scripts/sync_readme_settings.py`\n"
        + result.stderr[-6000:]
    )


def test_sync_script_rewrites_only_the_table(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    before = "# target-kinesis\n\nIntro.\n\n## Settings\n\n"
    after = "\n\nMore text | with a pipe.\n"
    readme.write_text(f"{before}{START}\n| stale | table |\n{END}{after}", encoding="utf-8")

    stale = _sync("--check", "--readme", str(readme))
    assert stale.returncode == 1, stale
    assert "out of date" in stale.stderr
    assert "| stale | table |" in readme.read_text(encoding="utf-8")  # --check never writes

    assert _sync("--readme", str(readme)).returncode == 0
    text = readme.read_text(encoding="utf-8")
    assert text.startswith(before + START + "\n| Setting | Required | Default | Description |\n")
    assert text.endswith(END + after)
    table = text[text.index(START) + len(START) : text.index(END)]
    assert "| stale | table |" not in table
    rows = {line.split("|")[1].strip() for line in table.strip().splitlines()[2:]}
    assert set(CONFIG_SCHEMA["properties"]) <= rows

    fresh = _sync("--check", "--readme", str(readme))
    assert fresh.returncode == 0, fresh.stderr


def test_sync_script_refuses_a_readme_without_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# target-kinesis\n", encoding="utf-8")
    result = _sync("--check", "--readme", str(readme))
    assert result.returncode == 2
    assert "settings-table:start" in result.stderr
    assert readme.read_text(encoding="utf-8") == "# target-kinesis\n"
