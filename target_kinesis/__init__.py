"""target-kinesis: a Singer target that streams Segment-spec events to Amazon Kinesis."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution


def _installed_version() -> str:
    """The installed package's version, read from the METADATA file's headers.

    `importlib.metadata.version` parses the whole file with the email parser, and ours holds
    the README as its description (100 KB): 6 ms of every start-up. The headers (Version is
    among the first) end at the first blank line. A file without the header gets the
    standard reading.
    """
    try:
        installed = distribution("target-kinesis")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0+unknown"
    headers = (installed.read_text("METADATA") or "").split("\n\n", 1)[0]
    for line in headers.splitlines():
        name, _, value = line.partition(":")
        if name == "Version" and value.strip():
            return value.strip()
    return str(installed.version)


__version__ = _installed_version()

__all__ = ["__version__"]
