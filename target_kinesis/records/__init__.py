"""What a RECORD goes through before it is an event: line parsing, message shapes, schema checks,
validation and the per-stream pipeline. Free of the Singer SDK, so that the mapping processes
(`parallel/`) and the Singer layer (`singer/`) use the very same code."""
