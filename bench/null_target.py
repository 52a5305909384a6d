"""A do-nothing Singer SDK target: the SDK's own floor.

Reads Singer messages exactly like any SDK target does (message parsing, record
validation against the stream schema -- on by default --, batching, state handling) and
then drops every record. Whatever a real SDK target does on top costs more than this.

Usage::

    python bench/null_target.py --config cfg.json < input.singer
"""

from __future__ import annotations

import typing as t

from singer_sdk import Target
from singer_sdk import typing as th
from singer_sdk.sinks import RecordSink


class NullSink(RecordSink):
    """Accepts every record and does nothing with it."""

    def process_record(self, record: dict, context: dict) -> None:
        pass


class NullTarget(Target):
    """Singer SDK target that discards records."""

    name = "null-target"
    config_jsonschema = th.PropertiesList(
        th.Property("stream_name", th.StringType),
        th.Property("service", th.StringType),
        th.Property("endpoint_url", th.StringType),
        th.Property("region", th.StringType),
        th.Property("aws_access_key_id", th.StringType),
        th.Property("aws_secret_access_key", th.StringType, secret=True),
        th.Property("preflight_check", th.BooleanType),
    ).to_dict()
    default_sink_class: t.ClassVar[type[RecordSink]] = NullSink


if __name__ == "__main__":
    NullTarget.cli()
