"""Encryption at rest for Dinero credentials (Fernet; several keys for rotation)."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr


class DecryptionFailed(Exception):
    """A stored secret could not be decrypted with any configured key."""


class TokenCipher:
    """The first key encrypts; every key decrypts. `rotate` re-encrypts with the first key."""

    def __init__(self, keys: Sequence[SecretStr]) -> None:
        if not keys:
            raise ValueError("at least one key is required")
        self._primary = Fernet(keys[0].get_secret_value())
        self._all = MultiFernet([Fernet(k.get_secret_value()) for k in keys])

    def encrypt(self, plaintext: SecretStr | str) -> bytes:
        value = plaintext.get_secret_value() if isinstance(plaintext, SecretStr) else plaintext
        return self._all.encrypt(value.encode("utf-8"))

    def decrypt(self, ciphertext: bytes) -> SecretStr:
        try:
            return SecretStr(self._all.decrypt(ciphertext).decode("utf-8"))
        except InvalidToken as exc:
            raise DecryptionFailed("no configured key decrypts this value") from exc

    def is_current(self, ciphertext: bytes) -> bool:
        """Whether the value is encrypted with the first (current) key."""
        try:
            self._primary.decrypt(ciphertext)
        except InvalidToken:
            return False
        return True

    def rotate(self, ciphertext: bytes) -> bytes:
        """The same plaintext, encrypted with the current key."""
        try:
            return self._all.rotate(ciphertext)
        except InvalidToken as exc:
            raise DecryptionFailed("no configured key decrypts this value") from exc
