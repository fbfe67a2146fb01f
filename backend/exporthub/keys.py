"""Keys derived from `EXPORTHUB_SECRET_KEY`, one set per purpose.

Each configured secret gives one 32-byte key per purpose through HKDF-SHA256, each purpose with its
own `info` label: a key that leaks from one use (say, a session cookie's cipher) tells nothing about
another (download links). The secrets come newest first: the first key signs, every key verifies,
so a secret can be rotated by putting the new one in front and dropping the old one later.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

CONSOLE_SESSION = b"exporthub console-session"
CSRF = b"exporthub csrf"
DOWNLOAD_LINK = b"exporthub download-link"
PURPOSES = (CONSOLE_SESSION, CSRF, DOWNLOAD_LINK)


def derive_keys(secrets: Sequence[str], purpose: bytes) -> list[bytes]:
    """One key per secret, in the secrets' order, for `purpose` (one of PURPOSES)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown key purpose {purpose!r}")
    return [_derive(secret, purpose) for secret in secrets]


# Cached: a status answer or a progress card signs a download link, and HKDF costs ~12 µs a call.
@functools.lru_cache(maxsize=64)
def _derive(secret: str, purpose: bytes) -> bytes:
    # No salt: settings.py accepts only long, random-looking secrets, and a salt would be one more
    # value to keep identical on every process.
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret.encode())
