#!/usr/bin/env bash
# The Meltano try-out: a local Kinesis endpoint (moto) on 127.0.0.1, `meltano run tap-jsonl
# target-kinesis` with this repo's meltano.yml in a scratch copy of the project, and what
# landed, read back. Stops the endpoint and removes the copy when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python scripts/meltano_demo.py "$@"
