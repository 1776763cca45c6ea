"""Evidence packages (signed, verifiable offline) and data retention (purging media and
biometric data after a per-exam period)."""
