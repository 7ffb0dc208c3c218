"""What a non-root caller (runc's "rootless EUID") may ask of config.json, checked before
anything is made: runc's validate/rootless.go rules and wording.

A process without CAP_SYS_ADMIN in the initial user namespace can build a container only
inside a user namespace it creates, with mappings it may write: its own euid/egid (written
by pyrunc), or ranges /etc/subuid grants it (written by the setuid newuidmap/newgidmap, as
runc does when the plain write is refused).
"""

import os

from ..errors import ConfigError


def is_rootless_euid():
    return os.geteuid() != 0


def check_config(config):
    """ConfigError (runc's text, prefixed with the field) when a non-root caller's config
    cannot work; nothing for root."""
    if not is_rootless_euid():
        return
    linux = config.get("linux") or {}
    user = [ns for ns in linux.get("namespaces") or () if ns.get("type") == "user"]
    if not user:
        raise ConfigError("rootless container requires user namespaces")
    if not user[0].get("path"):
        if not linux.get("uidMappings"):
            raise ConfigError("rootless containers requires at least one UID mapping")
        if not linux.get("gidMappings"):
            raise ConfigError("rootless containers requires at least one GID mapping")
    for i, m in enumerate(config.get("mounts") or ()):
        for opt in m.get("options") or ():
            for key, maps in (("uid", linux.get("uidMappings")), ("gid", linux.get("gidMappings"))):
                if not opt.startswith(key + "="):
                    continue
                try:
                    value = int(opt[len(key) + 1:])
                except ValueError:
                    continue  # runc ignores what it cannot parse
                if not _mapped(value, maps or ()):
                    raise ConfigError(f"config.json: mounts[{i}].options: cannot specify {key}= "
                                      f"mount options for unmapped {key} in rootless containers")
    if (config.get("process") or {}).get("user", {}).get("additionalGids"):
        raise ConfigError("config.json: process.user.additionalGids: cannot set any additional "
                          "groups in a rootless container")


def _mapped(value, mappings):
    return any(m["containerID"] <= value < m["containerID"] + m["size"] for m in mappings)


def only_own_gid(gid_mappings):
    """runc's requiresRootOrMappingTool, negated: the gid map is just container 0 -> our egid,
    which we may write ourselves once setgroups is denied (the kernel's rule since 3.19)."""
    return [(m["containerID"], m["hostID"], m["size"]) for m in gid_mappings] == [(0, os.getegid(), 1)]
