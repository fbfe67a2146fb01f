"""Keys derived from EXPORTHUB_SECRET_KEY: HKDF-SHA256, one key per secret and purpose."""

from __future__ import annotations

import itertools

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from exporthub.keys import CONSOLE_SESSION, CSRF, DOWNLOAD_LINK, PURPOSES, derive_keys

FIRST, SECOND = "a" * 20 + "bcdefghijklmnop", "q" * 20 + "rstuvwxyz012345"


def test_each_purpose_gets_its_own_key() -> None:
    keys = {purpose: derive_keys([FIRST], purpose)[0] for purpose in PURPOSES}
    assert set(PURPOSES) == {CONSOLE_SESSION, CSRF, DOWNLOAD_LINK}
    for a, b in itertools.combinations(PURPOSES, 2):
        assert keys[a] != keys[b], (a, b)
    assert all(len(key) == 32 for key in keys.values())
    assert FIRST.encode() not in keys.values()  # never the secret itself


def test_one_key_per_secret_in_order_and_stable() -> None:
    first, second = derive_keys([FIRST, SECOND], DOWNLOAD_LINK)
    assert first != second
    assert derive_keys([SECOND, FIRST], DOWNLOAD_LINK) == [second, first]
    assert derive_keys([FIRST], DOWNLOAD_LINK) == [first]  # the same on every process and restart


def test_the_derivation_is_hkdf_sha256_with_the_purpose_as_info() -> None:
    expected = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"exporthub csrf").derive(FIRST.encode())
    assert derive_keys([FIRST], CSRF) == [expected]


def test_an_unknown_purpose_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown key purpose"):
        derive_keys([FIRST], b"exporthub something-else")
