"""malloc_tuning: a large block freed and asked for again is reused, not mapped afresh."""

from __future__ import annotations

import subprocess
import sys

import pytest

from target_kinesis.malloc_tuning import keep_large_blocks

#: In a fresh interpreter: a 6 MiB block made and freed 20 times; how many times glibc served
#: it with a mapping of its own (mallinfo2's hblks; its first threshold is 128 KiB, and
#: rises only to the largest such block freed, so a fresh one is mapped at least once).
_PROBE = """
import ctypes, sys
from target_kinesis.malloc_tuning import keep_large_blocks
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallInfo2
if sys.argv[1] == "tuned":
    assert keep_large_blocks()
mapped = 0
for _ in range(20):
    before = mallinfo2().hblks
    block = bytearray(6 * 1024 * 1024)
    mapped += mallinfo2().hblks > before
    del block
print(mapped)
"""


def _fresh_mappings(arm: str) -> int:
    done = subprocess.run([sys.executable, "-c", _PROBE, arm], capture_output=True, text=True, check=True)
    return int(done.stdout)


@pytest.mark.skipif(not keep_large_blocks(), reason="not glibc: mallopt is not there, nothing is tuned")
def test_large_blocks_come_from_the_heap_once_tuned() -> None:
    assert _fresh_mappings("default") >= 1  # the probe sees glibc map such a block
    assert _fresh_mappings("tuned") == 0
