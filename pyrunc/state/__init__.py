"""The on-disk store of containers under --root."""
