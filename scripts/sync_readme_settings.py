#!/usr/bin/env python
"""Regenerate the settings table of README.md from `target-kinesis --about --format=markdown`.

The table between the markers

    <!-- settings-table:start -->
    <!-- settings-table:end -->

is replaced by the table of the `## Settings` section that the Singer SDK renders from the
target's config schema (target_kinesis/settings.py plus the SDK's built-in settings), so
the README never drifts from what `--about` and Meltano show. Everything outside the
markers is left as it is.

    .venv/bin/python scripts/sync_readme_settings.py           # rewrite README.md
    .venv/bin/python scripts/sync_readme_settings.py --check   # exit 1 if out of date

Exit codes: 0 up to date (or rewritten), 1 out of date under --check, 2 the README or its
markers are missing or malformed.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
START_MARKER = "<!-- settings-table:start -->"
END_MARKER = "<!-- settings-table:end -->"


class MarkerError(Exception):
    """The README has no well-formed pair of settings-table markers."""


def about_markdown() -> str:
    """`target-kinesis --about --format=markdown`, rendered in-process."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))  # run from a checkout without an installed package
    from target_kinesis.singer.target import TargetKinesis

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        TargetKinesis.print_about("markdown")
    return buffer.getvalue()


def settings_table(markdown: str) -> str:
    """The table (header, separator and rows) of the `## Settings` section, without a newline at the end."""
    lines = markdown.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "## Settings")
    except StopIteration:
        raise ValueError("the --about markdown has no '## Settings' section") from None
    table: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        if line.startswith("|"):
            table.append(line.rstrip())
        elif table:  # the first non-table line after the table ends it
            break
    if len(table) < 3:
        raise ValueError("the '## Settings' section of the --about markdown has no table rows")
    return "\n".join(table)


def replace_between_markers(text: str, table: str) -> str:
    """`text` with the content between the markers replaced by `table`."""
    if text.count(START_MARKER) != 1 or text.count(END_MARKER) != 1:
        raise MarkerError(
            f"README must contain exactly one {START_MARKER} and one {END_MARKER} "
            f"(found {text.count(START_MARKER)} and {text.count(END_MARKER)})"
        )
    head, rest = text.split(START_MARKER, 1)
    _old, tail = rest.split(END_MARKER, 1)
    if END_MARKER in head:
        raise MarkerError(f"{END_MARKER} comes before {START_MARKER}")
    return f"{head}{START_MARKER}\n{table}\n{END_MARKER}{tail}"


def has_markers(path: Path = README) -> bool:
    """Whether `path` exists and holds both markers (the tests skip otherwise)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    return START_MARKER in text and END_MARKER in text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if README is out of date")
    parser.add_argument("--readme", type=Path, default=README, help="the README to update (default: %(default)s)")
    args = parser.parse_args(argv)

    try:
        current = args.readme.read_text(encoding="utf-8")
    except FileNotFoundError:
        print(f"{args.readme}: no such file", file=sys.stderr)
        return 2
    try:
        wanted = replace_between_markers(current, settings_table(about_markdown()))
    except MarkerError as exc:
        print(f"{args.readme}: {exc}", file=sys.stderr)
        return 2

    if wanted == current:
        print(f"{args.readme}: settings table is up to date")
        return 0
    if args.check:
        diff = difflib.unified_diff(
            current.splitlines(keepends=True),
            wanted.splitlines(keepends=True),
            fromfile=f"{args.readme} (current)",
            tofile=f"{args.readme} (from --about)",
        )
        sys.stderr.writelines(diff)
        print(
            f"{args.readme}: settings table is out of date; run `python scripts/sync_readme_settings.py`",
            file=sys.stderr,
        )
        return 1
    args.readme.write_text(wanted, encoding="utf-8")
    print(f"{args.readme}: settings table updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
