"""Deterministic ids: a replay of the same input yields the same messageIds."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from target_kinesis.events.serialize import canonical

#: Fixed namespace: changing it would change every messageId users have stored.
NAMESPACE = uuid.UUID("6f1f6a5e-2b7c-4c1e-9a55-7a1d3c0b5e11")
_NAMESPACE_SHA1 = hashlib.sha1(NAMESPACE.bytes)
#: The variant bits of a UUID's 17th hex digit (RFC 4122: 10xx), by the digit's value.
_VARIANT_DIGIT = {f"{v:x}": f"{(v & 0x3) | 0x8:x}" for v in range(16)}


def deterministic_id(*parts: Any) -> str:
    """A UUID (version 5) that depends only on `parts`, so a replay yields the same id.

    Computed as uuid.uuid5 does (SHA-1 of namespace and name, version and variant bits
    set), on the hex text and without building UUID objects: this runs once per record.
    """
    sha1 = _NAMESPACE_SHA1.copy()
    sha1.update(canonical(parts))
    h = sha1.hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT_DIGIT[h[16]]}{h[17:20]}-{h[20:32]}"
