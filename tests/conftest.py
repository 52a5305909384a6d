"""Shared pytest configuration: the e2e fixtures (moto, kinesalite, fault proxy) come from
tests/support/fixtures.py."""

from tests.support.fixtures import *  # noqa: F403
