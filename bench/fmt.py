"""How figures are written in the report: one spelling of a missing value ("-"), of a ratio, of a table.

Apart from the tables so that the log lines of a run and every table (null endpoint, capacity,
aggregation) write a figure the same way without importing one another.
"""

from __future__ import annotations


def _fmt_int(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _ratio(a: float | None, b: float | None) -> str:
    """``a / b`` as "1.23x" ("-" unless both are known and positive)."""
    return f"{a / b:.2f}x" if a and b and a > 0 and b > 0 else "-"


def _shorten(text: str, width: int = 72) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _md_table(header: list[str], rows: list[list[str]], align: str) -> str:
    """A markdown table; ``align`` has one letter per column: ``l`` (text) or ``r`` (numbers)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
