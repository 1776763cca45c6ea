"""Recordings: chunk ingest, finalize, assembly (remux), snapshots, upload status."""
