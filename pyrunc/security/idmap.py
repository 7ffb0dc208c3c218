"""linux.uidMappings / gidMappings: checks, and writing them for a process in a new user namespace."""

from ..errors import ConfigError

MAX_ID = 2**32 - 1
MAX_LINES = 340  # the kernel's limit per map file


def check(mappings, field):
    """Overlapping or out-of-range ranges are errors naming the field."""
    if len(mappings) > MAX_LINES:
        raise ConfigError(f"config.json: {field}: at most {MAX_LINES} ranges are allowed")
    for i, m in enumerate(mappings):
        if m["size"] < 1:
            raise ConfigError(f"config.json: {field}[{i}].size: must be at least 1")
        for key in ("containerID", "hostID"):
            if m[key] + m["size"] - 1 > MAX_ID - 1:
                raise ConfigError(f"config.json: {field}[{i}]: {key} {m[key]} + size {m['size']} "
                                  f"goes past the largest id {MAX_ID - 1}")
    for key in ("containerID", "hostID"):
        ranges = sorted((m[key], m[key] + m["size"], i) for i, m in enumerate(mappings))
        for (s1, e1, i1), (s2, _, i2) in zip(ranges, ranges[1:]):
            if s2 < e1:
                raise ConfigError(f"config.json: {field}[{max(i1, i2)}]: its {key} range overlaps "
                                  f"{field}[{min(i1, i2)}]")


def map_text(mappings):
    return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in mappings)


def write_maps(pid, uid_mappings, gid_mappings, deny_setgroups=False):
    """Write uid_map, then setgroups, then gid_map (the kernel's required order)."""
    _write(f"/proc/{pid}/uid_map", map_text(uid_mappings), "uid_map")
    if deny_setgroups:
        _write(f"/proc/{pid}/setgroups", "deny", "setgroups")
    _write(f"/proc/{pid}/gid_map", map_text(gid_mappings), "gid_map")


def _write(path, text, what):
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError as e:
        raise ConfigError(f"failed to write {what} ({text.strip()!r}): {e.strerror.lower()}") from None
