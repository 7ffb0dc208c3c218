"""What a non-root caller (runc's "rootless EUID") may ask of config.json, checked before
anything is made: runc's validate/rootless.go rules and wording.

A process without CAP_SYS_ADMIN in the initial user namespace can build a container only
inside a user namespace it creates, with mappings it may write: its own euid/egid (written
by pyrunc), or ranges /etc/subuid grants it (written by the setuid newuidmap/newgidmap, as
runc does when the plain write is refused).
"""

import os

from ..errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..spec.model import Config, IdMapping


def is_rootless_euid():
    return os.geteuid() != 0


def check_config(spec: "Config"):
    """ConfigError (runc's text, prefixed with the field) when a non-root caller's config
    cannot work; nothing for root."""
    if not is_rootless_euid():
        return
    linux = spec.linux
    user = [ns for ns in linux.namespaces if ns.type == "user"]
    if not user:
        raise ConfigError("rootless container requires user namespaces")
    if not user[0].path:
        if not linux.uid_mappings:
            raise ConfigError("rootless containers requires at least one UID mapping")
        if not linux.gid_mappings:
            raise ConfigError("rootless containers requires at least one GID mapping")
    for i, m in enumerate(spec.mounts):
        for opt in m.options:
            for key, maps in (("uid", linux.uid_mappings), ("gid", linux.gid_mappings)):
                if not opt.startswith(key + "="):
                    continue
                try:
                    value = int(opt[len(key) + 1:])
                except ValueError:
                    continue  # runc ignores what it cannot parse
                if not _mapped(value, maps):
                    raise ConfigError(f"config.json: mounts[{i}].options: cannot specify {key}= "
                                      f"mount options for unmapped {key} in rootless containers")
    if spec.process.user.additional_gids:
        raise ConfigError("config.json: process.user.additionalGids: cannot set any additional "
                          "groups in a rootless container")


def _mapped(value, mappings):
    return any(m.container_id <= value < m.container_id + m.size for m in mappings)


def only_own_gid(gid_mappings: "list[IdMapping]"):
    """runc's requiresRootOrMappingTool, negated: the gid map is just container 0 -> our egid,
    which we may write ourselves once setgroups is denied (the kernel's rule since 3.19)."""
    return [(m.container_id, m.host_id, m.size) for m in gid_mappings] == [(0, os.getegid(), 1)]
