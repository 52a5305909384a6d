"""The README's sample run summary ("Run summary and progress") has the lines the target logs.

The sample is the demo's output (`bash scripts/demo.sh` prints the target's summary and
capacity lines after `log:`); these tests render the same lines with the target's own code
(`EventWriter.summary_lines`, for the demo's two destinations) and compare their shape: the
lines in the same order, each `summary` line with the same field names in the same order, each
`capacity` line the same text apart from its figures. A field added to or renamed in the
summary without the README following fails here. tests/e2e/test_demo.py compares the sample
with a real run of the demo.
"""

from __future__ import annotations

import re
from pathlib import Path

from target_kinesis.aws.services import SERVICES
from target_kinesis.config.destinations import Destination, Rule
from target_kinesis.delivery.encoding import Encoder
from target_kinesis.delivery.partition_keys import PartitionKeys
from target_kinesis.delivery.privacy import Privacy
from target_kinesis.delivery.producer import Pacing
from target_kinesis.delivery.routing import Router
from target_kinesis.delivery.stats import DestinationStats
from target_kinesis.delivery.writer import EventWriter

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Run summary and progress"
# The demo's destinations (sample_config.json) and what their pacing looks like there.
ORDERS = Destination("firehose", "demo-orders")
EVENTS = Destination("kinesis", "demo-events")
PACING = {
    ORDERS: Pacing(
        shards=0, records_per_second=1179.0, bytes_per_second=1.18 * 2**20, refused={}, waited=0.0, elapsed=0.4
    ),
    EVENTS: Pacing(
        shards=2, records_per_second=2000.0, bytes_per_second=2.0 * 2**20, refused={}, waited=0.0, elapsed=0.4
    ),
}


def readme_summary_lines(readme: Path = README) -> list[str]:
    """The sample's lines, without the demo's `log:` prefix."""
    text = readme.read_text(encoding="utf-8")
    assert SECTION in text, f"README.md has no {SECTION!r} section"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```[a-z]*\n(.*?)```", section, re.S)
    samples = [block for block in blocks if "summary events:" in block]
    assert len(samples) == 1, f"expected one code block with the sample summary in {SECTION!r}, found {len(samples)}"
    return [re.sub(r"^\s*log:\s*", "", line) for line in samples[0].splitlines() if line.strip()]


class _Producer:
    def __init__(self, destination: Destination) -> None:
        self.service = SERVICES[destination.service]
        self.stats = DestinationStats()
        self.stats.add(records_sent=3, aws_records=3, billed_units=3, bytes_sent=900, calls=1)
        self._pacing = PACING[destination]

    def pacing(self) -> Pacing:
        return self._pacing


def target_summary_lines() -> list[str]:
    """The lines the target logs at the end of a run to the demo's two destinations."""
    router = Router([Rule("Order Completed", ORDERS), Rule("*", EVENTS)])
    encoder = Encoder(
        router,
        router.destinations,
        privacy=Privacy(),
        partition_keys=PartitionKeys("userId"),
        newline=lambda service: SERVICES[service].default_append_newline,
    )
    clock = iter([0.0, *[0.4] * 100])
    writer = EventWriter(encoder, {d: _Producer(d) for d in PACING}, clock=lambda: next(clock))  # type: ignore[arg-type]
    return list(writer.summary_lines())


def field_names(line: str) -> list[str]:
    """`summary NAME: a=1 b=2` -> ["a", "b"]."""
    return [field.split("=", 1)[0] for field in line.split(": ", 1)[1].split()]


def without_figures(line: str) -> str:
    return re.sub(r"\d[\d,]*(?:\.\d+)?", "#", line)


def mismatches(readme: list[str], target: list[str]) -> list[str]:
    """How the README's sample lines differ in shape from the target's (empty: they agree)."""
    heads = [line.split(": ", 1)[0] for line in target]
    if [line.split(": ", 1)[0] for line in readme] != heads:
        return [f"the sample's lines are not the target's lines {heads}, in that order"]
    problems = []
    for sample, actual in zip(readme, target, strict=True):
        if sample.startswith("summary ") and field_names(sample) != field_names(actual):
            problems.append(f"fields differ:\n  README: {sample}\n  target: {actual}")
        if sample.startswith("capacity ") and without_figures(sample) != without_figures(actual):
            problems.append(f"text differs:\n  README: {sample}\n  target: {actual}")
    return problems


def test_readme_sample_summary_has_the_targets_lines_and_fields() -> None:
    readme, target = readme_summary_lines(), target_summary_lines()
    problems = mismatches(readme, target)
    assert not problems, (
        f"README's sample summary in {SECTION!r} no longer matches what the target logs; replace it with "
        "what `bash scripts/demo.sh` prints now:\n" + "\n".join(problems)
    )


def test_a_stale_sample_is_noticed(tmp_path: Path) -> None:
    target = target_summary_lines()
    fresh = [f"  log: {line}" for line in target]
    readme = tmp_path / "README.md"

    def sample(lines: list[str]) -> list[str]:
        readme.write_text(f"# x\n\n{SECTION}\n\ntext\n\n```\n" + "\n".join(lines) + "\n```\n\n## Next\n")
        return readme_summary_lines(readme)

    assert sample(fresh) == target
    assert mismatches(sample(fresh), target) == []
    kinesis = next(i for i, line in enumerate(fresh) if "summary kinesis:" in line)
    without_field = [*fresh]
    without_field[kinesis] = re.sub(r" aws_records=\d+ billed_units=\d+", "", fresh[kinesis])
    assert "fields differ" in mismatches(sample(without_field), target)[0]
    figures_only = [*fresh]
    figures_only[kinesis] = fresh[kinesis].replace("bytes=900", "bytes=3712")
    assert mismatches(sample(figures_only), target) == []  # the figures are a run's, not checked here
    assert mismatches(sample(fresh[1:]), target)  # a line missing
