"""Blob keys, built only from server ids and hashes (never from client input)."""

from __future__ import annotations


def chunk_key(attempt_id: str, recording_id: str, seq: int, sha256: str) -> str:
    # The hash makes the key content-addressed: two uploads of other bytes under one seq never
    # share a file, so a losing upload can never overwrite the stored chunk.
    return f"recordings/{attempt_id}/{recording_id}/chunks/{seq:07d}-{sha256}"


def original_key(attempt_id: str, recording_id: str, sha256: str) -> str:
    # Content-addressed too: a finalize that loses a race can never replace the stored join.
    return f"recordings/{attempt_id}/{recording_id}/original-{sha256}"


def media_key(attempt_id: str, recording_id: str, sha256: str, ext: str) -> str:
    return f"recordings/{attempt_id}/{recording_id}/media-{sha256}.{ext}"


def snapshot_key(attempt_id: str, kind: str, snapshot_id: str) -> str:
    return f"snapshots/{attempt_id}/{kind}/{snapshot_id}.jpg"
