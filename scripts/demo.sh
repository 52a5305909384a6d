#!/usr/bin/env bash
# The demo: a local Kinesis/Firehose endpoint (moto) on 127.0.0.1, sample Singer data
# through `target-kinesis --config sample_config.json`, and what landed, read back.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python scripts/demo.py "$@"
