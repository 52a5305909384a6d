"""pytest fixtures for the end-to-end tests; ``tests/conftest.py`` star-imports them.

The servers are session-scoped: moto starts in about half a second, kinesalite in a
fifth, but a suite of many e2e tests would still pay that per test, and both keep each
stream apart, so tests isolate themselves with fresh names (``readback.unique_name``)
instead of fresh servers. Proxies are per test, since their faults and counters are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .fault_proxy import FaultProxy
from .postgres import LocalPostgres, start_postgres
from .servers import LocalServer, start_kinesalite, start_moto_server
from .silent_endpoint import SilentEndpoint

__all__ = [
    "FaultProxyFactory",
    "fault_proxy",
    "kinesalite_server",
    "moto_server",
    "postgres_server",
    "silent_endpoint",
]

FaultProxyFactory = Callable[..., FaultProxy]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[LocalServer]:
    """One moto server (Kinesis, Firehose, S3, STS, IAM) on 127.0.0.1 for the session."""
    with start_moto_server() as server:
        yield server


@pytest.fixture(scope="session")
def kinesalite_server() -> Iterator[LocalServer]:
    """One in-memory kinesalite (Kinesis only) on 127.0.0.1 for the session.

    Installs kinesalite with npm on first use; fails (not skips) without node/npm, since
    CI must run these tests.
    """
    with start_kinesalite() as server:
        yield server


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[LocalPostgres]:
    """A PostgreSQL of the machine's own binaries, initdb'd in a scratch folder, on 127.0.0.1
    (a free port, unix socket in that folder) for one test module; stopped and removed after.

    Fails (not skips) when PostgreSQL is not installed, naming what to install: CI must run
    these tests, and scripts/test.sh installs it where it can.
    """
    with start_postgres() as server:
        yield server


@pytest.fixture
def fault_proxy(request: pytest.FixtureRequest) -> Iterator[FaultProxyFactory]:
    """Factory ``fault_proxy(upstream_url=None, seed=0, **faults) -> FaultProxy``.

    Each call starts a new proxy (upstream: the session's moto server unless given); all
    are stopped after the test. Fault keywords are those of ``FaultConfig`` plus
    ``keep_bodies`` and ``upstream_timeout``.
    """
    proxies: list[FaultProxy] = []

    def factory(upstream_url: str | None = None, seed: int | None = 0, **kwargs: Any) -> FaultProxy:
        if upstream_url is None:
            upstream_url = request.getfixturevalue("moto_server").url
        proxy = FaultProxy(upstream_url, seed, **kwargs).start()
        proxies.append(proxy)
        return proxy

    yield factory
    for proxy in proxies:
        proxy.stop()


@pytest.fixture
def silent_endpoint() -> Iterator[SilentEndpoint]:
    """An endpoint on 127.0.0.1 that accepts connections and never answers."""
    with SilentEndpoint() as endpoint:
        yield endpoint
