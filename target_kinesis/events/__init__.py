"""From a Singer record to a Segment-spec event: pure functions, no I/O, no AWS."""
