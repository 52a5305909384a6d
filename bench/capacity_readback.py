"""tests/support/capacity_endpoint.py, plus a way to read back every record it stored.

The capacity endpoint is shared with the tests and left as it is; this runs its ``main`` with
one more control route, for the aggregation scenarios of ``run.py --capacity``:

* ``GET /__records?stream=NAME`` -> ``{"records": [{"shard": ..., "sequence": ..., "key": ...,
  "explicit_hash_key": ..., "data": BASE64}, ...]}``: every stored record of a Kinesis stream
  (per shard in shard-id order, each shard in sequence order) or of a Firehose stream (in
  arrival order; ``shard`` and ``key`` empty). Firehose has no read API, so this is how the
  harness sees what a delivery stream got; Kinesis streams are read with GetRecords (the
  consumers' way) and this route is only a cross-check.

Everything else (limits, refusals, ``/__stats``, ``/__health``, the command line) is the capacity
endpoint's own. Usage, as the capacity endpoint's::

    python bench/capacity_readback.py --port 0 --kinesis NAME:SHARDS --firehose NAME:BYTES_PER_S
"""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
CAPACITY_ENDPOINT = ROOT / "tests" / "support" / "capacity_endpoint.py"


def _load_capacity_endpoint():
    """The capacity endpoint module, loaded from its file (tests/ is not installed)."""
    spec = importlib.util.spec_from_file_location("capacity_endpoint", CAPACITY_ENDPOINT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


capacity_endpoint = _load_capacity_endpoint()
_ORIGINAL_GET = capacity_endpoint.CapacityHandler.do_GET


def _records_payload(backend, name: str) -> bytes:
    stored = backend.any_stream(name).stored()
    records = [
        {
            "shard": r.shard_id,
            "sequence": r.sequence_number,
            "key": r.partition_key,
            "explicit_hash_key": r.explicit_hash_key,
            "data": base64.b64encode(r.data).decode("ascii"),
        }
        for r in stored
    ]
    return json.dumps({"records": records}, separators=(",", ":")).encode("ascii")


def do_GET(self) -> None:  # BaseHTTPRequestHandler calls it by this name
    url = urlsplit(self.path)
    if url.path != "/__records":
        _ORIGINAL_GET(self)
        return
    name = parse_qs(url.query).get("stream", [""])[0]
    try:
        body = _records_payload(self.server.backend, name)
    except (KeyError, ValueError) as error:
        self._send(404, {"__type": "ResourceNotFoundException", "message": f"no single stream named {name!r}: {error}"})
        return
    self.send_response(200)
    self.send_header("Content-Type", "application/json")
    self.send_header("Content-Length", str(len(body)))
    self.end_headers()
    self.wfile.write(body)


capacity_endpoint.CapacityHandler.do_GET = do_GET

if __name__ == "__main__":
    sys.exit(capacity_endpoint.main())
