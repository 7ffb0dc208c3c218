"""Is a container's cgroup frozen by a pause of its own? The reader `pyrunc state` (every
verb's status, runtime/status.py) and the Manager share; it imports nothing, so the status
path pays for two file reads and no module of the cgroup code (cgroups/freezer.py pauses and
resumes).
"""


def which(mode, dirs):
    """The freezer a cgroup uses: ("v1", its freezer directory) on a v1 or hybrid host with a
    freezer hierarchy, else ("v2", its cgroup2 directory: cgroup.freeze), else (None, None).
    dirs: {controller: directory}, "" for the cgroup2 one (Manager's, and state.json's "paths")."""
    if mode != "unified" and "freezer" in dirs:
        return "v1", dirs["freezer"]
    if "" in dirs:
        return "v2", dirs[""]
    return None, None


def frozen(version, d):
    """Whether the cgroup is frozen by a pause of its own, as the files say now (no waiting:
    `pyrunc state` and every verb's status read it, runtime/status.py). On v1 a cgroup is also
    FROZEN while an ancestor is, and runc then reports it running (freezer.self_freezing 0;
    a kernel without self_freezing: FROZEN is all there is); FREEZING counts as frozen. On
    cgroup v2 cgroup.freeze is the cgroup's own setting (cgroup.events "frozen 1" includes
    ancestors'). An unreadable file: not frozen."""
    try:
        if version == "v1":
            with open(d + "/freezer.state") as f:
                if f.read().strip() == "THAWED":
                    return False
            try:
                with open(d + "/freezer.self_freezing") as f:
                    return f.read().strip() != "0"
            except FileNotFoundError:
                return True
        if version == "v2":
            with open(d + "/cgroup.freeze") as f:
                return f.read().strip() == "1"
    except OSError:
        pass
    return False
