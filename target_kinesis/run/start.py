"""Starting a run: from checked settings to producers ready to send, and mapping processes.

Everything a run needs before it reads its first line, in the order it is needed: AWS
clients sized for the producers' concurrent calls, the dead letters (written with the
producers' own clients), the preflight describe of every destination (a clear error now
beats a failed batch an hour in), each Kinesis stream's shard map, one producer per
destination; and, when records need nothing of the Singer SDK, the mapping processes.
"""

from __future__ import annotations

import logging
import multiprocessing
import sys
import threading
import typing as t
from collections.abc import Callable
from functools import partial

from target_kinesis.aws.clients import AwsClients
from target_kinesis.aws.errors import AwsCallFailed, explain
from target_kinesis.aws.kinesis import list_shards
from target_kinesis.aws.s3 import put_object
from target_kinesis.aws.services import SERVICES, describe_stream
from target_kinesis.config.destinations import Destination
from target_kinesis.config.settings import Settings
from target_kinesis.delivery.dead_letters import DeadLetters, PutRetries
from target_kinesis.delivery.encoding import Encoder
from target_kinesis.delivery.flow import flow_for
from target_kinesis.delivery.producer import Producer, ProducerLimits
from target_kinesis.delivery.shards import ShardMap, ShardMapReader
from target_kinesis.delivery.writer import EventWriter
from target_kinesis.errors import PreflightError
from target_kinesis.parallel.pool import MappingPool


def aws_clients(settings: Settings, encoder: Encoder) -> AwsClients:
    """The run's AWS clients, with a connection for every call the producers may have open."""
    connections = settings.max_concurrent_requests * len(encoder.destinations) + 2
    return AwsClients(settings.aws_access(), max_pool_connections=max(10, connections))


def open_dead_letters(settings: Settings, clients: AwsClients) -> DeadLetters:
    """The dead-letter file, or S3 objects written with the producers' own clients (their
    credentials, role and endpoint) and retried by the run's own retry settings."""
    s = settings
    put = partial(put_object, clients.client("s3")) if s.dead_letter_location is not None else None
    return DeadLetters(
        s.dead_letter_path,
        put_object=put,
        retries=PutRetries(s.max_retries, s.retry_base_delay, s.retry_max_delay),
        refresh_credentials=clients.refresh_credentials,
    )


def start_writer(
    settings: Settings,
    encoder: Encoder,
    clients: AwsClients,
    dead_letters: DeadLetters,
    logger: logging.Logger,
) -> EventWriter:
    """The preflight check and shard map of every destination, then its producer.

    The dead letters are opened by the caller first, so that a stop during these calls
    still closes them.
    """
    s = settings
    shard_maps: dict[int, ShardMap] = {}  # filled below; records' shards are predicted with them
    producers: dict[Destination, Producer] = {}
    for index, destination in enumerate(encoder.destinations):
        client = clients.client(destination.service)
        maps = ShardMapReader(partial(list_shards, client, destination.stream), index, shard_maps)
        if destination.service == "kinesis" and s.preflight_check:
            # The shard map is read while the describe is in flight: one round trip less at
            # start (with TLS to AWS, tens of milliseconds). A failed describe still stops
            # the run first, without waiting for the read (a daemon thread, dropped).
            read = _InBackground(maps.reread, name=f"shard-map-{index}")
            stream_max = preflight(s, destination, client, logger)
            shard_map_read = read.result()
        else:
            stream_max = preflight(s, destination, client, logger) if s.preflight_check else None
            shard_map_read = maps.reread() if destination.service == "kinesis" else None
        if destination.service == "kinesis" and shard_map_read is None:
            logger.warning(
                "Cannot read the shard map of %s (%s; kinesis:ListShards is needed): it is paced by the "
                "stream's refusals alone",
                destination,
                maps.failure,
            )
        configured = s.record_bytes(destination.service)
        if stream_max and configured and configured > stream_max:
            logger.warning(
                "max_record_bytes %d is above the %d bytes stream '%s' accepts; using %d",
                configured,
                stream_max,
                destination.stream,
                stream_max,
            )
        shard_map = shard_maps.get(index)
        producers[destination] = Producer(
            destination,
            SERVICES[destination.service],
            clients,
            ProducerLimits.for_destination(s, destination, stream_max),
            flow=flow_for(s, shard_map),
            dead_letters=dead_letters,
            refresh_credentials=clients.refresh_credentials,
            shard_maps=maps if destination.service == "kinesis" else None,
        )
    return EventWriter(encoder, producers, shard_maps=shard_maps)


_T = t.TypeVar("_T")


class _InBackground(t.Generic[_T]):
    """A call made in a daemon thread (which never holds up a stop or the exit): `result()`
    waits for it, and returns its value or raises its exception."""

    def __init__(self, call: Callable[[], _T], *, name: str) -> None:
        self._call = call
        self._value: _T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._call()
        except BaseException as exc:  # raised again in the caller's thread, by result()
            self._error = exc

    def result(self) -> _T | None:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def preflight(settings: Settings, destination: Destination, client: t.Any, logger: logging.Logger) -> int | None:
    """Describe a destination; a clear error now beats a failed batch an hour in. Returns the
    largest record the stream accepts, when it says."""
    service = SERVICES[destination.service]
    where = f"{destination.service} stream '{destination.stream}' in region {settings.region}"
    try:
        info = describe_stream(client, destination.service, destination.stream)
    except AwsCallFailed as exc:
        line = explain(
            exc.error,
            where=where,
            verb="describe",
            needed=f"{destination.service}:{service.describe_api_name} is needed",
            alternative="set preflight_check to false",
        )
        raise PreflightError(f"preflight: {line}") from None
    if not info.active:
        raise PreflightError(f"preflight: {where} is {info.status}, not ACTIVE")
    logger.info("Destination %s is %s%s", destination, info.status, " (KMS-encrypted)" if info.encrypted else "")
    return info.max_record_bytes


def start_mapping_processes(
    settings: Settings,
    writer: EventWriter,
    *,
    plain_records: bool,
    validate: bool,
    logger: logging.Logger,
) -> MappingPool | None:
    """Parse, validate and map on other cores, when records need nothing of the SDK.

    Stream maps, flattening and record metadata are the SDK's to apply, one record at a
    time in the main process; with any of them configured (`plain_records` false), no
    mapping processes.
    """
    processes = settings.mapping_processes
    if not processes or not plain_records or "fork" not in multiprocessing.get_all_start_methods():
        return None
    if sys.platform == "darwin":
        return None  # forking a process that loaded system frameworks is not safe there
    try:
        pool = MappingPool(processes, settings, validate=validate, shard_maps=dict(writer.shard_maps))
    except OSError as exc:
        logger.warning("Cannot start mapping processes (%s); mapping in the main process", exc)
        return None
    logger.info("Mapping records in %d processes", processes)
    return pool


__all__ = ["aws_clients", "open_dead_letters", "preflight", "start_mapping_processes", "start_writer"]
