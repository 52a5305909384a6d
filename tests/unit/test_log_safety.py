"""No secret in any log line: the AWS loggers kept at INFO, known secret values masked (log_safety.py)."""

from __future__ import annotations

import logging

import pytest

from target_kinesis import log_safety


def test_masking_replaces_known_secrets_in_every_logger(caplog: pytest.LogCaptureFixture) -> None:
    log_safety.mask_secrets(["hush-hush-value-1", None, "demo"])
    with caplog.at_level(logging.INFO):
        logging.getLogger("anything.at.all").info("value is %s", "hush-hush-value-1")
        logging.getLogger("x").info("stream demo-events")
    assert "hush-hush-value-1" not in caplog.text
    assert "value is ***" in caplog.text and "stream demo-events" in caplog.text


def test_aws_loggers_never_go_below_info() -> None:
    logging.getLogger("botocore.parsers").setLevel(logging.DEBUG)
    logging.getLogger("urllib3").setLevel(logging.NOTSET)
    log_safety.quiet_aws_loggers()
    assert not logging.getLogger("botocore.parsers").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("botocore.endpoint").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("urllib3.connectionpool").isEnabledFor(logging.DEBUG)
