"""Keeping secrets out of every log line, at every log level.

At DEBUG, botocore logs each request's parameters (the ExternalId of AssumeRole), its
headers (`x-amz-security-token`) and each answer's body (the assumed role's secret key
and session token). Two guards, because one alone leaves a gap:

* the AWS libraries' loggers never go below INFO, whatever LOGLEVEL says: their DEBUG
  lines are where request and answer bodies are, and an answer's secrets are logged
  before we could know their values;
* every log record, from any logger, has the secret values we do know (secret settings,
  assumed-role credentials) replaced by `***`, before any handler sees it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

#: Loggers whose DEBUG output holds request and answer bodies.
AWS_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")
MASK = "***"
#: Values shorter than this are not masked: a short one ("demo", "prod") would mangle ordinary words
#: such as stream names; what logs secrets (botocore at DEBUG) is quieted whatever their length.
_MIN_SECRET_CHARS = 8

_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()
_installed = False


def quiet_aws_loggers() -> None:
    """Raise the AWS libraries' loggers (and any of their children set lower) to INFO."""
    manager = logging.Logger.manager
    names = [name for name in manager.loggerDict if name.split(".", 1)[0] in AWS_LOGGERS]
    for name in {*AWS_LOGGERS, *names}:
        logger = logging.getLogger(name)
        if logger.level < logging.INFO:
            logger.setLevel(logging.INFO)


def mask_secrets(values: Iterable[str | None]) -> None:
    """Mask these values in every log record from now on (idempotent, thread-safe)."""
    global _secrets, _installed
    new = {value for value in values if value and len(value) >= _MIN_SECRET_CHARS}
    with _lock:
        _secrets = _secrets | new
        if not _installed:
            _install_record_factory()
            _installed = True


def redact(text: str) -> str:
    """`text` with every known secret value replaced by the mask."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _install_record_factory() -> None:
    make_record = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        if _secrets:
            message = record.getMessage()
            masked = redact(message)
            if masked != message:
                record.msg, record.args = masked, ()
        return record

    logging.setLogRecordFactory(factory)


def guard_logs(secrets: Iterable[str | None]) -> None:
    """Both guards, for a run whose secret settings are `secrets`."""
    quiet_aws_loggers()
    mask_secrets(secrets)
