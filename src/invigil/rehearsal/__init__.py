"""Rehearsals and load tests: simulate N candidates against a deployment before the day
(``invigil rehearse``), and the load generator that bench/ingest.py shares."""
