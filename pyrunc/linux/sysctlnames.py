"""linux.sysctl keys: sysctl(8)'s two spellings, and which keys name a file below /proc/sys.

Pure logic, shared by the config checks (spec/semantic.py) and the init's writes (shim/init.py),
so the two can never disagree on what a key means.
"""


def relpath(key):
    """"sys/<...>" for a linux.sysctl key, or None if the key is not a sysctl name.

    sysctl(8)'s two spellings: "net.ipv4.conf.eth0/100.rp_filter" (dots separate, a "/" is a
    dot inside a name) and "net/ipv4/conf/eth0.100/rp_filter" (the first separator is "/").
    No empty, "." or ".." component and no NUL: a key names one file below /proc/sys.
    """
    if not isinstance(key, str) or not key or "\0" in key:
        return None
    first = min((i for i in (key.find("."), key.find("/")) if i >= 0), default=-1)
    if first >= 0 and key[first] == "/":
        parts = key.split("/")
    else:
        parts = [p.replace("/", ".") for p in key.split(".")]
    if any(p in ("", ".", "..") for p in parts):
        return None
    return "sys/" + "/".join(parts)


def dotted(key):
    """runc's convertSysctlVariableToDotsSeparator: sysctl(8) also spells keys with "/"."""
    seps = [i for i in (key.find("."), key.find("/")) if i >= 0]
    if not seps or key[min(seps)] == ".":
        return key
    return key.translate(str.maketrans("./", "/."))
