"""Analysis of what the cameras saw: per-frame facts of snapshots and the flags raised from them.

``frames`` measures one snapshot, ``flags`` turns the recent measurements of an attempt's stream
into events, ``thresholds`` says what counts (defaults, server, exam), ``jobs`` runs it all as
the durable ``snapshot.analyse`` job.
"""
