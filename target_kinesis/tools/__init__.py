"""The operator tools: `target-kinesis-tail` and `target-kinesis-policy`."""
