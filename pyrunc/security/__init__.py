"""Host-side translation of the security fields (seccomp, capabilities, id mappings)."""
