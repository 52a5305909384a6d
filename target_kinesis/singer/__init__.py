"""The Singer side: the target, its sinks, the message reader and BATCH files. The only
package that imports the Singer SDK; everything below it is plain Python."""

from target_kinesis.gc_tuning import collections_paused
from target_kinesis.singer.sdk_import import without_tap_side

# Before any module here imports the SDK: its target side only (sdk_import.py says why),
# with no collections meanwhile (gc_tuning.py).
with collections_paused():
    without_tap_side()
