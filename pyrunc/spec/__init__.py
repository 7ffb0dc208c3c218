"""The OCI runtime-spec documents pyrunc reads: schemas for config.json and state."""
