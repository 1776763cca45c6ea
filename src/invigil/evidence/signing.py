"""The server's evidence signing key and the signature block in a package's zip comment.

The Ed25519 key is derived from ``INVIGIL_SECRET_KEY`` with HKDF, so every server process and
the CLI sign with the same key without a key file to copy, back up or lose; rotating the secret
rotates the key (publish the new public key with ``invigil evidence public-key``).

The signature covers the SHA-256 of every byte of the zip file before the comment (all members,
the central directory and the end record up to and including the comment length). The comment
holds the public key and the signature in a fixed-length ASCII block, so changing any byte of
the file either breaks the signature or the block itself.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"INVIGIL-EVIDENCE-SIG/1 ed25519 "
_KEY_B64 = 44  # base64 of 32 bytes
_SIG_B64 = 88  # base64 of 64 bytes
BLOCK_LEN = len(MAGIC) + _KEY_B64 + 1 + _SIG_B64
PLACEHOLDER = MAGIC + b"=" * (BLOCK_LEN - len(MAGIC))


def signing_key(secret: str) -> Ed25519PrivateKey:
    seed = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"invigil",
        info=b"invigil evidence package signing key v1",
    ).derive(secret.encode())
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_text(key: Ed25519PublicKey) -> str:
    """The form ``invigil evidence public-key`` prints and ``verify --public-key`` takes."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def fingerprint(key_text: str) -> str:
    """A short, readable name of a public key (SHA-256 of its raw bytes, first 16 hex)."""
    return hashlib.sha256(base64.b64decode(key_text)).hexdigest()[:16]


def sign_block(key: Ed25519PrivateKey, digest: bytes) -> bytes:
    signature = key.sign(digest)
    block = MAGIC + public_key_text(key.public_key()).encode() + b" " + base64.b64encode(signature)
    assert len(block) == BLOCK_LEN
    return block


@dataclass(frozen=True)
class SignatureBlock:
    public_key: str
    signature: bytes


class BadBlock(ValueError):
    pass


def parse_block(block: bytes) -> SignatureBlock:
    if len(block) != BLOCK_LEN or not block.startswith(MAGIC):
        raise BadBlock("not an invigil signature block")
    rest = block[len(MAGIC) :]
    key_b64, sep, sig_b64 = rest[:_KEY_B64], rest[_KEY_B64 : _KEY_B64 + 1], rest[_KEY_B64 + 1 :]
    if sep != b" ":
        raise BadBlock("malformed signature block")
    try:
        # validate=True refuses anything outside the alphabet; re-encoding must give the same
        # text, so no two spellings of one key or signature exist.
        key_raw = base64.b64decode(key_b64, validate=True)
        signature = base64.b64decode(sig_b64, validate=True)
    except ValueError as exc:
        raise BadBlock(f"malformed signature block: {exc}") from None
    if base64.b64encode(key_raw) != key_b64 or base64.b64encode(signature) != sig_b64:
        raise BadBlock("malformed signature block")
    if len(key_raw) != 32 or len(signature) != 64:
        raise BadBlock("malformed signature block")
    return SignatureBlock(key_b64.decode(), signature)


def check(block: SignatureBlock, digest: bytes) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(block.public_key))
        key.verify(block.signature, digest)
    except (InvalidSignature, ValueError):
        return False
    return True
