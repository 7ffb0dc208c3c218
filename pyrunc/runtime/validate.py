"""`pyrunc validate`: every problem `create` would find in a bundle, found without creating
anything (no state, no cgroup, no process, no cache entry, no mount).

create stops at the first problem (each check raises); here each stage collects what it can:
  1. config.json read (UTF-8, JSON, depth) — a file that does not parse ends the list
  2. the schema: every error, each with its field path (spec/schema.py iter_errors, the same
     validator create uses: the same verdict)
  3. only for a schema-valid document (the checks below assume its types): the semantic
     checks (spec/semantic.py, collecting), the rootfs, the host-side checks of create
     (capabilities, namespace paths, LSM labels, the seccomp program compiled in memory, the
     cgroup path) and process.args[0] looked up in the rootfs by fd (openat2 RESOLVE_IN_ROOT,
     as the init would after pivot_root), unless a config mount may provide it
Not checked (they need the container): values the cgroup files refuse, mounts, hooks.
"""

import os
import stat

from ..errors import PyruncError
from ..spec import schema, semantic
from ..spec.load import read_json


def problems(bundle, systemd_cgroup=False):
    """Each problem as one line naming its file and field; [] for a good bundle."""
    bundle = os.path.abspath(bundle)
    if not os.path.isdir(bundle):
        return [f"bundle {bundle}: no such directory"]
    try:
        config = read_json(os.path.join(bundle, "config.json"), "config.json")
    except PyruncError as e:
        return [str(e)]
    if not isinstance(config, dict):
        return ["config.json: the document must be a JSON object"]
    found = [_line("config.json", schema.format_path(path), message)
             for path, message in schema.iter_errors(config, "config")]
    if found:
        return found
    report: list[tuple[str, str, str]] = []
    semantic.check_config(config, report)
    found += [_line(*r) for r in report]
    from ..spec.model import build
    spec = build(config)  # as create's: the checks below read the model
    rootfs, rootfs_ok = "", False
    if spec.root is not None:  # (a missing root is in the report already)
        rootfs = os.path.normpath(os.path.join(bundle, spec.root.path))
        rootfs_ok = os.path.isdir(rootfs)
        if not rootfs_ok:
            found.append(f"config.json: root.path: rootfs ({rootfs}) does not exist or is not a directory")
    checks = [_capabilities, _namespace_paths, _mount_namespace, _lsm, _seccomp]
    if "process" not in config:  # reported by semantic.check_config
        checks = [_namespace_paths, _mount_namespace, _seccomp]
    for check in checks:
        try:
            check(spec)
        except PyruncError as e:
            found.append(str(e))
    try:
        from ..cgroups import manager_for
        manager_for(spec.linux.cgroups_path, "validate", systemd=systemd_cgroup)
    except PyruncError as e:
        found.append(f"config.json: {e}")  # cgroup errors name the field, not the file
    if rootfs_ok and "process" in config and spec.process.args:
        problem = _executable_problem(spec, rootfs)
        if problem:
            found.append(problem)
    return found


def _line(source, field, message):
    if source is None:
        return message  # already names its file and field
    return f"{source}: {field}: {message}" if field else f"{source}: {message}"


def _capabilities(spec):
    from .create import resolve_capabilities
    resolve_capabilities(spec.process, None)


def _namespace_paths(spec):
    from .create import check_namespace_paths
    check_namespace_paths(spec)


def _mount_namespace(spec):
    from .create import check_mount_namespace
    check_mount_namespace(spec)


def _lsm(spec):
    from .create import check_lsm
    check_lsm(spec.process, spec.linux.mount_label)


def _seccomp(spec):
    if spec.linux.seccomp is not None:
        from ..security.seccomp import program_for
        program_for(spec.linux.seccomp.raw, None)  # compiled in memory: no cache entry written


def _executable_problem(spec, rootfs):
    """Go's exec.LookPath of process.args[0] inside the rootfs, as the init does it; None when
    found, or when a mount of the config may be what provides it (we cannot tell here)."""
    process = spec.process
    name = process.args[0]
    env = dict(item.partition("=")[::2] for item in process.env)
    if "/" in name:
        candidates = [os.path.join(process.cwd, name)]
    else:
        candidates = [os.path.join(d, name) for d in env["PATH"].split(":") if d.startswith("/")] \
            if env.get("PATH") else []
    try:
        root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None  # reported with root.path
    try:
        for path in candidates:
            if _is_executable(root_fd, path):
                return None
    finally:
        os.close(root_fd)
    mounted = [m.destination for m in spec.mounts]
    if any(_below(os.path.dirname(os.path.normpath(c)), d) for c in candidates for d in mounted):
        return None
    where = "in $PATH" if "/" not in name else f"at {candidates[0]}"
    return f'config.json: process.args[0]: exec: "{name}": executable file not found {where} ' \
           f"in the rootfs"


def _is_executable(root_fd, path):
    from ..shim.paths import open_in_root
    try:
        fd = open_in_root(root_fd, path.lstrip("/") or ".")
    except OSError:
        return False
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    return stat.S_ISREG(st.st_mode) and bool(st.st_mode & 0o111)


def _below(path, directory):
    directory = os.path.normpath(directory)
    return path == directory or path.startswith(directory.rstrip("/") + "/")
