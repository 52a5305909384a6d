"""From a finished event to records acknowledged by AWS: routing, privacy switches, partition
keys, encoding, batching, retry rules, the producers and the writer that feeds them, dead letters."""
