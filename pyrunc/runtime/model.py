"""Typed results returned by the public API."""


class ContainerState:
    """A container as `pyrunc state` reports it (a plain class: dataclasses costs ~7 ms to import)."""

    __slots__ = ("id", "pid", "status", "bundle", "rootfs", "created", "owner", "annotations",
                 "oci_version")

    def __init__(self, id, pid, status, bundle, rootfs, created, owner="", annotations=None,
                 oci_version=None):
        if oci_version is None:  # pyrunc/version.py: loaded by the verbs that report a state only
            from ..version import SPEC_VERSION as oci_version
        self.id = id
        self.pid = pid
        self.status = status
        self.bundle = bundle
        self.rootfs = rootfs
        self.created = created
        self.owner = owner
        self.annotations = annotations or {}
        self.oci_version = oci_version

    def __repr__(self):
        return f"ContainerState(id={self.id!r}, pid={self.pid}, status={self.status!r})"

    def to_oci(self):
        """runc's `state` JSON object, keys in runc's order."""
        doc = {"ociVersion": self.oci_version, "id": self.id, "pid": self.pid,
               "status": self.status, "bundle": self.bundle, "rootfs": self.rootfs,
               "created": self.created}
        if self.annotations:
            # runc marshals a Go map: keys come out sorted, whatever config.json's order was
            doc["annotations"] = dict(sorted(self.annotations.items()))
        doc["owner"] = self.owner
        return doc
