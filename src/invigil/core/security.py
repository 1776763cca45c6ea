"""Passwords (argon2) and opaque bearer tokens (random, stored only as a keyed hash)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import Parameters, PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

# argon2id, 64 MiB, 3 passes, 4 lanes (RFC 9106's second recommendation): about 0.2 s of CPU a
# hash here. A hash names its own parameters, so raising them later still verifies old ones.
PASSWORD_PARAMETERS: Parameters = profiles.RFC_9106_LOW_MEMORY
_hasher = PasswordHasher.from_parameters(PASSWORD_PARAMETERS)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(secret_key: str, token: str) -> str:
    """A stolen database reveals no usable token: only this keyed digest is stored."""
    return hmac.new(secret_key.encode(), token.encode(), hashlib.sha256).hexdigest()
