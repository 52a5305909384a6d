"""CPU per record of each part of the record path, measured in this process: ``python bench/components.py``.

The end-to-end runs (bench/run.py) say how fast the whole target is; this says where its CPU
goes, part by part, so that whoever works on speed knows which part to take on and can measure
one part before and after a change without the noise of a whole run. Each part runs on the
benchmark's own input (the cached `orders` records, bench/inputs.py), the minimum of
``--repeat`` rounds of CPU time (process_time) is reported per record:

* ``map_lines``: what a mapping process does to a chunk of RECORD lines (parse, precheck,
  map, messageId, encode, predict shards): `parallel.worker.RecordMapper.map_lines`;
* ``worker round``: the same with what the process adds around it (splitting the chunk into
  lines, the long-number scan, pickling the answer);
* ``unpickle answer``: the main process reading a mapping process's answer;
* ``pacing``: `delivery.pacing.PacedBatcher` taking those answers' runs on a 256-shard stream
  with room (the null endpoint's case) and handing out batches of 500;
* ``PutRecords call``: one call of 500 records through `aws.clients.AwsClients.json_call`
  (body, SigV4, HTTP, answer) against the null endpoint in its own process (its CPU not
  counted), per record.

The main process's share of a record is about the last three; the mapping processes' is the
second. What a whole run adds beyond them (pipes, scheduling three processes on the cores, the
SDK's bookkeeping) is the end-to-end figure minus these.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from collections.abc import Callable
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == _BENCH:
    sys.path[0] = str(_BENCH.parent)  # as bench/run.py: bench imports as a package

from bench.endpoints import Endpoint, null_endpoint_argv  # noqa: E402
from bench.inputs import ensure_input  # noqa: E402
from target_kinesis.aws.clients import AwsClients  # noqa: E402
from target_kinesis.aws.kinesis import KinesisService  # noqa: E402
from target_kinesis.config.settings import Settings  # noqa: E402
from target_kinesis.delivery.flow import DestinationFlow  # noqa: E402
from target_kinesis.delivery.pacing import PacedBatcher  # noqa: E402
from target_kinesis.delivery.shards import ShardMap  # noqa: E402
from target_kinesis.parallel.segments import SEGMENT_RECORDS  # noqa: E402
from target_kinesis.parallel.worker import RESULT, MappedChunk, RecordMapper  # noqa: E402
from target_kinesis.records.codec import may_hold_long_numbers  # noqa: E402

SHARDS = 256
CALL_RECORDS = 500


def _per_record(work: Callable[[], int], repeat: int) -> float:
    """Minimum CPU microseconds per record over `repeat` rounds of `work` (which returns its records)."""
    work()  # warm: caches, lazily built validators
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        records = work()
        best = min(best, (time.process_time() - started) / records * 1e6)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--records", type=int, default=20_000, help="records per round (default 20000)")
    parser.add_argument("--repeat", type=int, default=5, help="rounds per part; the minimum is reported")
    args = parser.parse_args(argv)

    lines = ensure_input(args.records, 42).read_bytes().split(b"\n")
    schema = next(line for line in lines if line.startswith(b'{"type":"SCHEMA"'))
    records = [line for line in lines if line.startswith(b'{"type":"RECORD"')]
    endpoint = Endpoint(null_endpoint_argv(SHARDS))
    endpoint.start(quiet=True)
    try:
        settings = Settings.from_config(
            {
                "stream_name": "bench",
                "service": "kinesis",
                "endpoint_url": endpoint.url,
                "region": "us-east-1",
                "aws_access_key_id": "x",
                "aws_secret_access_key": "y",
            }
        )
        shard_map = ShardMap.of([(f"shardId-{i:012d}", i * (2**128 // SHARDS)) for i in range(SHARDS)])
        mapper = RecordMapper(settings, validate=True, shard_maps={0: shard_map})
        mapper.schema(schema)
        chunks = [records[i : i + SEGMENT_RECORDS] for i in range(0, len(records), SEGMENT_RECORDS)]
        bodies = [b"\n".join(chunk) + b"\n" for chunk in chunks]
        answers: list[bytes] = []

        def map_lines() -> int:
            for chunk in chunks:
                mapper.map_lines(chunk, plain_numbers=True)
            return len(records)

        def worker_round() -> int:
            answers.clear()
            for body in bodies:
                chunk = body.split(b"\n")
                chunk.pop()
                mapped = mapper.map_lines(chunk, plain_numbers=not may_hold_long_numbers(body))
                answers.append(RESULT + pickle.dumps(mapped, protocol=pickle.HIGHEST_PROTOCOL))
            return len(records)

        def unpickle() -> int:
            for answer in answers:
                pickle.loads(memoryview(answer)[1:])
            return len(records)

        worker_round()  # the answers the main process's parts take
        mapped: list[MappedChunk] = [pickle.loads(memoryview(answer)[1:]) for answer in answers]
        runs = [run for chunk in mapped for _, run in chunk.runs(0, len(chunk.ends))]

        def pacing() -> int:
            now = [1000.0]
            flow = DestinationFlow(
                shard_map.ids,
                shard_records_per_second=1000,
                shard_bytes_per_second=1024 * 1024,
                records_per_second=None,
                bytes_per_second=None,
                clock=lambda: now[0],
            )
            batcher = PacedBatcher(CALL_RECORDS, 5 * 1024 * 1024, flow, 10_000, clock=lambda: now[0])
            handed = 0
            for run in runs:
                now[0] += 1.0  # a second between runs: every shard has room, as on a large stream
                batcher.add(run)
                while (batch := batcher.pop_ready(force=False)) is not None:
                    handed += sum(entry.count for entry in batch)
                    batcher.complete(batch)
            while (batch := batcher.pop_ready(force=True)) is not None:
                handed += sum(entry.count for entry in batch)
                batcher.complete(batch)
            return handed

        aws = AwsClients(settings.aws_access())
        column = mapped[0].columns[0]
        call_wires = [column.entry(0, CALL_RECORDS).wire]

        def put_call() -> int:
            calls = 20
            for _ in range(calls):
                KinesisService.put(aws, "bench", call_wires, CALL_RECORDS)
            return calls * CALL_RECORDS

        parts = [
            ("map_lines (mapping process)", map_lines),
            ("worker round: split, map_lines, pickle (mapping process)", worker_round),
            ("unpickle answer (main process)", unpickle),
            (f"pacing on {SHARDS} shards, batches of {CALL_RECORDS} (main process)", pacing),
            (f"PutRecords call of {CALL_RECORDS}: body, SigV4, HTTP, answer (main process)", put_call),
        ]
        print(f"| part | CPU µs/record (min of {args.repeat}) |")
        print("|---|---:|")
        for name, work in parts:
            print(f"| {name} | {_per_record(work, args.repeat):.2f} |")
    finally:
        endpoint.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
