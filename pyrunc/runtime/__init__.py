"""The host side of the container lifecycle: create, start, kill, delete, run."""
