"""The live proctor console: real-time room view, alerts, warnings, notes, face-login help."""
