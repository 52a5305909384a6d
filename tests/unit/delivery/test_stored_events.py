"""Events encoded before (dead letters, redriven): `Encoder.encode_stored` adds only what the
destination adds (newline, partition key, wire form) and never changes the event's bytes."""

from __future__ import annotations

import base64

from target_kinesis.aws.services import SERVICES
from target_kinesis.config.destinations import Destination
from target_kinesis.delivery.encoding import Encoded, Encoder
from target_kinesis.delivery.partition_keys import PartitionKeys
from target_kinesis.delivery.privacy import Privacy
from target_kinesis.delivery.routing import Router

KINESIS = Destination("kinesis", "k")
FIREHOSE = Destination("firehose", "f")
EVENT = b'{"messageId":"m-7","type":"track","n":1.50}'


def _encoder(packed: bool = False) -> Encoder:
    return Encoder(
        Router(()),
        [FIREHOSE, KINESIS],
        privacy=Privacy(exclude_fields=("n",)),  # never applied to stored events
        partition_keys=PartitionKeys("userId"),
        newline=lambda service: SERVICES[service].default_append_newline,
        packed=lambda destination: packed,
    )


def test_the_bytes_are_kept_and_the_key_too() -> None:
    out: list[Encoded] = []
    encoder = _encoder(packed=True)
    encoder.encode_stored(KINESIS, EVENT, "u1", out)
    encoder.encode_stored(FIREHOSE, EVENT, None, out)
    (k_index, k_key, _, k_data, _), (f_index, f_key, _, f_data, _) = out
    assert (encoder.destinations[k_index], k_key, k_data) == (KINESIS, "u1", EVENT)
    assert (encoder.destinations[f_index], f_key, f_data) == (FIREHOSE, None, EVENT + b"\n")


def test_a_kinesis_letter_without_a_key_uses_the_messageid() -> None:
    out: list[Encoded] = []
    encoder = _encoder()
    encoder.encode_stored(KINESIS, EVENT, None, out)
    (_, key, size, wire, _) = out[0]
    assert key == "m-7" and encoder.stats.key_fallbacks == 1
    assert size == len(EVENT) + len("m-7")
    assert base64.b64encode(EVENT) in wire, "the request form carries the bytes unchanged"
