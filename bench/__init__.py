"""Benchmark harness for target-kinesis.

Runs, sequentially and on the same generated Singer input against the same local null
endpoint (a separate process, so its CPU is not charged to anyone; no limits: every stream
has ``--null-shards`` shards, 256 by default, which the target reads with ListShards):

* ``tk-kinesis``        target-kinesis -> Kinesis PutRecords
* ``tk-firehose``       target-kinesis -> Firehose PutRecordBatch
* ``baseline``          bench/baseline_producer.py (the hand-written producer) -> Kinesis
* ``null-target``       bench/null_target.py (Singer SDK target that drops records)
* ``baseline-firehose`` (optional, via --contenders) the baseline producer -> Firehose
* ``tk-kinesis-kpl``    (optional, via --contenders) target-kinesis -> Kinesis with
                        ``aggregation: kpl`` (events packed into KPL aggregated records)
* ``tk-kinesis-serial`` (optional, via --contenders) target-kinesis -> Kinesis with
                        ``mapping_processes: 0`` (one process, as on a single CPU)

and reports wall time, records/s, CPU seconds and peak memory of each child (RSS from
``wait4``, or the PSS of its whole process tree when larger), the records the endpoint received, the throughput ratios, the linearity of
records/s across ``--sizes`` and the memory ceiling.

``--ref REV`` adds ``tk-kinesis@SHA`` (and ``tk-firehose@SHA``): the target as it is at
commit REV, extracted under bench/out/ref-SHA/, run with the same config, input, endpoint
and interpreter, alternating with the others; the report sets them side by side.
``--streams N`` measures what opening N streams costs (one SCHEMA each, then its records).
``--capacity [SCENARIO,...]`` runs the target (and its ``--ref`` twin) against streams that
refuse writes beyond AWS's limits (tests/support/capacity_endpoint.py, a fresh one per run)
and reports how close it came to each stream's capacity and how much was refused; its
``kinesis-kpl`` and ``firehose-lines`` scenarios set the target with ``aggregation`` beside the
target without it, read back every stored record and count events lost, duplicated and misplaced.

The harness is this package, one module per role (listed under "Layout" in bench/README.md);
bench/run.py is its command. The other scripts of bench/ are run as child processes by path.

Usage::

    .venv/bin/python bench/run.py [--records 100000] [--sizes 10000,100000,1000000]
                                  [--repeat 1] [--ref REV] [--streams N] [--write-results]
    .venv/bin/python bench/run.py --capacity [SCENARIO,...] [--capacity-scale 0.25] --sizes '' [--ref REV]
    .venv/bin/python bench/run.py --profile [--records 100000] [--write-results]
"""
