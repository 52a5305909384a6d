"""The tables and verdicts of the capacity scenarios: Capacity, per shard (hot key), Aggregation, their goals.

Apart from bench.report (the null endpoint's tables) because the figures differ (efficiency,
refusals, read-back) and either is printed without the other.
"""

from __future__ import annotations

from bench.capacity import CapacityRun
from bench.fmt import _fmt, _fmt_int, _md_table, _ratio, _shorten
from bench.readback import BILLING_UNIT_BYTES
from bench.refs import base_key, is_ref
from bench.report import _status_text
from bench.scenarios import CAPACITY_LEAN_INPUT, HOT_SHARD_GOAL, SCENARIOS, Scenario

THROTTLE_CODES = {"ProvisionedThroughputExceededException": "throughput", "ServiceUnavailableException": "slow down"}


def _refused_text(run: CapacityRun) -> str:
    parts = [f"{THROTTLE_CODES.get(code, code)} {n:,}" for code, n in sorted(run.refused.items())]
    calls = sum(run.failed_calls.values())
    if calls:
        parts.append(f"({calls:,} calls refused whole)")
    return "; ".join(parts) or "0"


def _share_ratio(current: float | None, ref: float | None) -> str:
    """current / ref of two shares, where 0 is a real value ("0.00x" when current is 0)."""
    if current is None or ref is None or ref <= 0:
        return "-"
    return f"{current / ref:.2f}x"


def _exit_text(run: CapacityRun) -> str:
    codes = ", ".join("-" if rc is None else str(rc) for rc in run.exits) or "-"
    errors = "; ".join(_shorten(e.replace("|", "\\|"), 140) for e in run.errors if e)
    return f"{codes}: {errors}" if errors else codes


def capacity_table(results: dict[str, dict[str, CapacityRun]]) -> str:
    """One row per scenario and contender; after a --ref twin, the ratios current / ref."""
    rows: list[list[str]] = []
    for name, runs in results.items():
        for key, r in runs.items():
            if r.status == "SKIPPED":
                rows.append([name, r.label, *["-"] * 15, _status_text(r)])
                continue
            eff = r.efficiency_accepts
            spread = f" ({min(r.efficiencies):.2f}-{max(r.efficiencies):.2f})" if len(r.efficiencies) > 1 else ""
            landed = f"{r.landed:,} / {r.sent:,}" + ("" if r.landed == r.sent else " **MISMATCH**")
            rows.append(
                [
                    name,
                    r.label,
                    f"{r.wall:.2f}",
                    f"{r.ideal:.2f}",
                    _fmt(r.span, ".2f"),
                    _fmt(eff, ".3f") + spread,
                    _fmt(r.efficiency_wall, ".3f"),
                    _fmt(r.first_accept, ".2f"),
                    f"{r.offered:,}",
                    _refused_text(r),
                    "-" if r.refused_share is None else f"{r.refused_share * 100:.1f}%",
                    landed,
                    _fmt(r.bytes_per_record, ",.0f"),
                    f"{r.cpu:.2f}",
                    f"{r.endpoint_cpu:.2f}",
                    f"{r.rss_mib:.1f}",
                    _exit_text(r),
                    _status_text(r),
                ]
            )
            current = runs.get(base_key(key))
            if is_ref(key) and current is not None and current.status != "SKIPPED" and r.status != "SKIPPED":
                rows.append(
                    [
                        name,
                        "**current / ref**",
                        _ratio(current.wall, r.wall),
                        "",
                        "",
                        _ratio(current.efficiency_accepts, eff),
                        _ratio(current.efficiency_wall, r.efficiency_wall),
                        "",
                        _ratio(current.offered, r.offered),
                        "",
                        _share_ratio(current.refused_share, r.refused_share),
                        "",
                        "",
                        _ratio(current.cpu, r.cpu),
                        _ratio(current.endpoint_cpu, r.endpoint_cpu),
                        "",
                        "",
                        "",
                    ]
                )
    header = [
        "scenario",
        "contender",
        "wall s",
        "ideal s",
        "accepts s",
        "efficiency (accepts)",
        "efficiency (wall)",
        "first accept s",
        "offered",
        "refused",
        "refused/offered",
        "landed / sent",
        "bytes / AWS record",
        "CPU s",
        "endpoint CPU s",
        "peak MiB",
        "exit",
        "status",
    ]
    return _md_table(header, rows, "llrrrrrrrlrrrrrrll")


def shards_table(results: dict[str, dict[str, CapacityRun]], name: str) -> str:
    """Per shard of one scenario: records, ideal seconds and last accept, per contender."""
    rows: list[list[str]] = []
    for r in results.get(name, {}).values():
        hot = r.hot_and_cold()
        hot_id = hot[0][0] if hot else None
        for sid, s in r.shards.items():
            rows.append(
                [
                    r.label,
                    sid + (" (hot)" if sid == hot_id else ""),
                    f"{s['records']:,}",
                    f"{s['expected']:,}",
                    f"{s['ideal']:.2f}",
                    _fmt(s["last"], ".2f"),
                ]
            )
    if not rows:
        return "(no shard figures)"
    header = ["contender", "shard", "records", "records sent to it", "ideal s", "last accept s (after the first)"]
    return _md_table(header, rows, "llrrrr")


def capacity_verdicts(results: dict[str, dict[str, CapacityRun]], scale: float) -> dict:
    """The goals of the current target in each scenario that has one (the --ref twin is not judged)."""
    verdicts: dict = {}
    at = "" if scale == 1 else f", at --capacity-scale {scale:g}"
    for name, runs in results.items():
        scenario, r = SCENARIOS[name], runs.get("tk")
        if scenario.aggregation:
            verdicts.update(aggregation_verdicts(scenario, runs.get(f"tk-{scenario.aggregation}"), at))
            continue
        if r is None or r.status == "SKIPPED":
            continue
        goal = f"capacity {name} ({scenario.what}{at})"
        if not r.ok:
            if scenario.min_efficiency is not None or name == "kinesis-hot-key":
                verdicts[goal] = (False, _status_text(r))
            continue
        if scenario.min_efficiency is not None and scenario.max_refused is not None:
            eff, share = r.efficiency_accepts or 0.0, r.refused_share or 0.0
            verdicts[goal] = (
                eff >= scenario.min_efficiency and share <= scenario.max_refused,
                f"efficiency {eff:.3f} over the accepts ({_fmt(r.efficiency_wall, '.3f')} over the wall), "
                f"refused {share * 100:.1f}% of offered "
                f"(goal >= {scenario.min_efficiency:.2f}, <= {scenario.max_refused * 100:.0f}%)",
            )
        elif name == "kinesis-hot-key":
            hot = r.hot_and_cold()
            if hot is None:
                verdicts[goal] = (False, "no per-shard accept times")
                continue
            (hot_id, hot_last), cold_last = hot
            verdicts[goal] = (
                cold_last <= HOT_SHARD_GOAL * hot_last,
                f"cold shards' last accept {cold_last:.2f}s, hot shard {hot_id}'s {hot_last:.2f}s after the first "
                f"accept ({cold_last / hot_last if hot_last > 0 else 0:.2f} of it; goal <= {HOT_SHARD_GOAL:.2f})",
            )
    return verdicts


def _units_per_event(run: CapacityRun) -> tuple[float | None, float | None]:
    """Billed units per event sent: from the target's summary line, and from the stored records."""
    summary = (run.summary or {}).get("billed")
    stored = (run.readback or {}).get("billed") if not (run.readback or {}).get("error") else None

    def per(units: int | None) -> float | None:
        return None if units is None or not run.sent else units / run.sent

    return per(summary), per(stored)


def aggregation_verdicts(scenario: Scenario, r: CapacityRun | None, at: str) -> dict:
    """The goals of the aggregating target in an aggregation scenario, one line each."""
    verdicts: dict = {}
    if r is None or r.status == "SKIPPED":
        return verdicts
    head = f"capacity {scenario.name}, aggregation {scenario.aggregation}{at}"
    back = r.readback if r.readback is not None and not r.readback.get("error") else None
    why = "" if r.ok else f"; run {_status_text(r)}"
    if back is None:
        verdicts[f"{head}"] = (False, _status_text(r) if not r.ok else "no record read back")
        return verdicts
    if scenario.min_events_per_s is not None:
        eps, ceiling = r.events_per_s or 0.0, r.ceiling_events_per_s
        bytes_per_event = back["stored_bytes"] / back["events"] if back["events"] else 0.0
        verdicts[f"{head}: events/s"] = (
            r.ok and eps >= scenario.min_events_per_s,
            f"{eps:,.0f} events/s over the wall ({_fmt(r.events_per_s_accepts, ',.0f')} over the accepts); the "
            f"stream's capacity allows {_fmt(ceiling, ',.0f')} events/s of these ({bytes_per_event:,.0f} bytes an "
            f"event stored, data and key) (goal >= {scenario.min_events_per_s:,.0f}){why}",
        )
    if scenario.max_refused is not None:
        share = r.refused_share or 0.0
        verdicts[f"{head}: refused"] = (
            share <= scenario.max_refused,
            f"{share * 100:.1f}% of {r.offered:,} AWS records offered (goal <= {scenario.max_refused * 100:.0f}%)",
        )
    if scenario.max_units_per_event is not None:
        by_summary, by_stored = _units_per_event(r)
        judged = [v for v in (by_summary, by_stored) if v is not None]
        verdicts[f"{head}: billed units per event"] = (
            bool(judged) and max(judged) <= scenario.max_units_per_event,
            f"{_fmt(by_summary, '.3f')} from the summary's billed_units, {_fmt(by_stored, '.3f')} from the stored "
            f"records' sizes ({BILLING_UNIT_BYTES[scenario.service] // 1024} KB units) "
            f"(goal <= {scenario.max_units_per_event:.2f}, both)",
        )
    verdicts[f"{head}: events lost"] = (
        back["lost"] == 0,
        f"{back['lost']:,} lost of {r.sent:,} ({back['duplicated']:,} duplicated, {back['unknown']:,} unknown; "
        f"{back['events']:,} events read back from {back['aws_records']:,} records) (goal 0 lost)",
    )
    if back.get("misplaced") is not None:
        verdicts[f"{head}: events misplaced"] = (
            back["misplaced"] == 0,
            f"{back['misplaced']:,} user records on a shard whose hash range lacks their key (goal 0)",
        )
    return verdicts


def aggregation_table(results: dict[str, dict[str, CapacityRun]]) -> str:
    """The aggregation scenarios: per contender what was sent, packed, billed and read back; after
    the contender without aggregation, the ratios packed / not packed."""
    rows: list[list[str]] = []
    for name, runs in results.items():
        scenario = SCENARIOS[name]
        if not scenario.aggregation:
            continue
        for key, r in runs.items():
            if r.status == "SKIPPED":
                rows.append([name, r.label, *["-"] * 17, _status_text(r)])
                continue
            back = r.readback if r.readback is not None and not r.readback.get("error") else None
            aws = r.aws_landed
            summary = r.summary or {}
            by_summary, by_stored = _units_per_event(r)
            rows.append(
                [
                    name,
                    r.label,
                    f"{r.wall:.2f}",
                    _fmt(r.events_per_s, ",.0f"),
                    _fmt(r.events_per_s_accepts, ",.0f"),
                    _fmt(r.ceiling_events_per_s, ",.0f"),
                    _fmt(r.efficiency_accepts, ".3f"),
                    _fmt_int(aws),
                    _fmt(back["events"] / back["aws_records"] if back and back["aws_records"] else None, ",.1f"),
                    _fmt(back["stored_bytes"] / back["events"] if back and back["events"] else None, ",.0f"),
                    "-" if r.refused_share is None else f"{r.refused_share * 100:.1f}% of {r.offered:,}",
                    _fmt_int(summary.get("billed")),
                    _fmt_int(back["billed"] if back else None),
                    f"{_fmt(by_summary, '.3f')} / {_fmt(by_stored, '.3f')}",
                    _fmt_int(back["events"] if back else None),
                    _fmt_int(back["lost"] if back else None),
                    _fmt_int(back["duplicated"] if back else None),
                    _fmt_int(back.get("misplaced") if back else None),
                    _fmt_int(back["unknown"] if back else None),
                    _status_text(r),
                ]
            )
            packed = runs.get(f"tk-{scenario.aggregation}")
            if key == "tk" and packed is not None and packed.status != "SKIPPED" and r.status != "SKIPPED":
                p_units, r_units = _units_per_event(packed), _units_per_event(r)
                rows.append(
                    [
                        name,
                        f"**{scenario.aggregation} / none**",
                        _ratio(packed.wall, r.wall),
                        _ratio(packed.events_per_s, r.events_per_s),
                        _ratio(packed.events_per_s_accepts, r.events_per_s_accepts),
                        _ratio(packed.ceiling_events_per_s, r.ceiling_events_per_s),
                        "",
                        _ratio(packed.aws_landed, r.aws_landed),
                        "",
                        "",
                        _share_ratio(packed.refused_share, r.refused_share),
                        _ratio((packed.summary or {}).get("billed"), (r.summary or {}).get("billed")),
                        _ratio((packed.readback or {}).get("billed"), (r.readback or {}).get("billed")),
                        f"{_ratio(p_units[0], r_units[0])} / {_ratio(p_units[1], r_units[1])}",
                        *[""] * 6,
                    ]
                )
    header = [
        "scenario",
        "contender",
        "wall s",
        "events/s (wall)",
        "events/s (accepts)",
        "capacity events/s",
        "efficiency (accepts)",
        "AWS records",
        "events / record",
        "bytes / event",
        "refused / offered",
        "billed units (summary)",
        "billed units (stored)",
        "units / event (summary / stored)",
        "events read back",
        "lost",
        "duplicated",
        "misplaced",
        "unknown",
        "status",
    ]
    return _md_table(header, rows, "llrrrrrrrrrrrrrrrrrl")


def event_bytes_text(name: str, runs: dict[str, CapacityRun]) -> str | None:
    """The mean size of an event on the wire in one scenario, from the current target without
    aggregation (key ``tk``), one AWS record an event: what the endpoint stored / records stored."""
    r = runs.get("tk")
    if r is None or r.status == "SKIPPED" or r.bytes_per_record is None:
        return None
    scenario = SCENARIOS[name]
    what = "data and partition key" if scenario.service == "kinesis" else "data: the event JSON and its newline"
    back = r.readback if r.readback is not None and not r.readback.get("error") else None
    json_bytes = f", the event JSON {back['event_bytes'] / back['events']:,.1f}" if back and back["events"] else ""
    return f"`{name}`: event bytes (mean, on the wire): {r.bytes_per_record:,.1f} ({what}{json_bytes})"


def capacity_section(results: dict[str, dict[str, CapacityRun]], scale: float, repeat: int) -> str:
    out = [capacity_table(results), ""]
    sizes = [text for name, runs in results.items() if (text := event_bytes_text(name, runs))]
    if sizes:
        out += [
            "Event size, from the target without aggregation (one AWS record an event; "
            f"{'lean' if CAPACITY_LEAN_INPUT else 'full'} orders, generate.py"
            f"{' --lean' if CAPACITY_LEAN_INPUT else ''}):",
            "",
            *[f"- {text}" for text in sizes],
            "",
        ]
    out.append(
        "*ideal s*: what the stream's capacity allows for what was sent: Kinesis, the busiest shard's "
        "records / 1,000 a second (or its bytes / 1 MiB a second, if more), times 1 / the share left by the "
        "other producer; Firehose, the bytes the endpoint counts (event JSON and newline) / the stream's bytes "
        "a second. *accepts s*: the endpoint's first to last accepted record. *efficiency (accepts)* = ideal / "
        "accepts s; *efficiency (wall)* = ideal / wall s (spawn to exit of the last process: start-up included). "
        "*first accept s*: from the spawn. *offered*: records the endpoint judged (refused ones again each time "
        "they are retried); *refused/offered*: refused records / offered. *landed / sent*: records the endpoint "
        "stored / records in the input(s). *bytes / AWS record*: what the endpoint stored (Kinesis: data and "
        "partition keys; Firehose: data) / AWS records stored. *CPU s*: user + sys of the target process(es). "
        + (
            f"Figures of the median run of {repeat} by efficiency (accepts); the range of that efficiency in brackets. "
            if repeat > 1
            else ""
        )
        + "*current / ref*: ratio of the column (efficiency: above 1 is better; refused/offered and CPU: below 1)."
        + (f" Record counts scaled by {scale:g}." if scale != 1 else "")
    )
    if any(SCENARIOS[name].aggregation for name in results):
        out += [
            "",
            "**Aggregation**",
            "",
            aggregation_table(results),
            "",
            "Every record the stream stored is read back after the run: Kinesis with GetRecords and AWS's "
            "deaggregation module (`aws_kinesis_agg`, tests/support/kpl_readback.py), Firehose from the endpoint "
            "(`/__records`) split on newlines; each event is found by its `properties.order_id` in the input. "
            "*events/s* = events that reached the stream (sent - lost) / wall s (spawn to exit) or / accepts s. "
            "*capacity events/s* = events / ideal s: what the stream's limits allow for these records (Kinesis: "
            "1,000 AWS records and 1 MiB of data and keys a second a shard; Firehose: its bytes a second). "
            "*AWS records*: records the endpoint stored; *bytes / event*: their data (and partition keys, "
            "Kinesis) / events. *refused / offered*: AWS records. *billed units*: Kinesis 25 KB PUT payload "
            "units, Firehose 5 KB units, each record rounded up: from the target's summary line (`billed_units=`) "
            "and computed from the stored records' sizes; *units / event* = units / events sent. *lost*: events of "
            "the input not read back; *duplicated*: extra copies; *misplaced*: user records read from a shard whose "
            "hash-key range does not hold their partition key's MD5 (the KCL drops them); *unknown*: events that "
            "do not parse or are not in the input. In the Capacity table *landed / sent* counts events read back "
            "for these scenarios. *X / none*: ratio of the column, with / without aggregation.",
        ]
    if "kinesis-hot-key" in results:
        out += [
            "",
            "**kinesis-hot-key, per shard**",
            "",
            shards_table(results, "kinesis-hot-key"),
            "",
            "*records sent to it*: records of the input whose userId hashes to the shard. *last accept s*: "
            "seconds from the stream's first accept to the shard's last. The cold shards finish well before the "
            "hot one when the hot shard's backlog does not hold them back.",
        ]
    return "\n".join(out)
