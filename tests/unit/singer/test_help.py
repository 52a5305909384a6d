"""`target-kinesis --help`: what the target does, and the operator tools that come with it."""

from __future__ import annotations

import subprocess

from tests.support.target_cli import TARGET


def test_help_names_the_operator_tools_and_meltano_commands() -> None:
    done = subprocess.run([TARGET, "--help"], capture_output=True, text=True, check=True, timeout=60)
    text = " ".join(done.stdout.split())  # click wraps the help to the terminal width
    assert "Segment event" in text
    for tool in ("target-kinesis-tail", "target-kinesis-policy", "target-kinesis-local", "target-kinesis-redrive"):
        assert tool in text, tool
    assert "meltano invoke target-kinesis:tail" in text
    assert "--config ENV" in text
