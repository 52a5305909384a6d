"""The package's version (`target_kinesis.__version__`), read from the METADATA headers."""

from __future__ import annotations

from importlib.metadata import version

import pytest

import target_kinesis
from target_kinesis import installed_version


def test_the_version_is_the_installed_one() -> None:
    assert target_kinesis.__version__ == installed_version("target-kinesis") == version("target-kinesis")


def test_the_sdk_version_is_the_sdks_own_reading() -> None:
    from singer_sdk.helpers._packaging import get_sdk_version

    from target_kinesis.singer.target import TargetKinesis

    assert TargetKinesis.get_sdk_version() == get_sdk_version() == version("singer_sdk")
    assert installed_version("no-such-package-here") is None


class _Installed:
    def __init__(self, metadata: str | None) -> None:
        self.metadata = metadata
        self.version = "9.9.9"

    def read_text(self, name: str) -> str | None:
        assert name == "METADATA"
        return self.metadata


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ("Metadata-Version: 2.4\nName: target-kinesis\nVersion: 1.2.3\n\nVersion: 0.0.1 in the README\n", "1.2.3"),
        ("Metadata-Version: 2.4\nName: target-kinesis\n\nVersion: 0.0.1 in the README\n", "9.9.9"),
        (None, "9.9.9"),
    ],
)
def test_the_version_header_else_the_standard_reading(
    monkeypatch: pytest.MonkeyPatch, metadata: str | None, expected: str
) -> None:
    monkeypatch.setattr(target_kinesis, "distribution", lambda name: _Installed(metadata))
    assert installed_version("target-kinesis") == expected
