"""The one error type of the cgroups package."""

from ..errors import PyruncError


class CgroupError(PyruncError):
    """A cgroup operation failed; the message names the spec field and the file.

    `errno` is the OS error behind it, when there is one, so that callers (and the
    memory setter, which must tell EBUSY from EINVAL) can react without parsing text.
    """

    def __init__(self, message, errno=None, field=None):
        super().__init__(message)
        self.errno = errno
        self.field = field  # the spec field it is about ("linux.resources.memory.limit"), if known


class CgroupFrozen(CgroupError):
    """runc's "container's cgroup unexpectedly frozen": create would wait for it forever."""
