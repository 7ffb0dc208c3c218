"""`pyrunc features`: the runtime-spec features document (features.md, features-linux.md).

Every list comes from the table the runtime itself uses, so the document cannot claim more
than pyrunc implements. Cheap: no pyseccomp, no jsonschema; the only probes are two
/sys lookups (AppArmor, SELinux), /proc/self/status and one seccomp(2) call per flag.
"""

from ..version import SPEC_VERSION, SPEC_VERSION_MIN, __version__, commit

# The hook lists pyrunc runs (runtime/hooks.py: create runs prestart + createRuntime, the init
# createContainer + startContainer, start poststart, delete poststop). Only what is implemented:
# tests/integration/test_cli_features.py checks each name against the code.
HOOKS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")

CGROUP = {"v1": True, "v2": True, "systemd": True, "systemdUser": True}


def features():
    """The document as a dict (`pyrunc features` prints it as JSON)."""
    from ..linux import lsm, mountflags
    from ..linux.capabilities import NAMES as CAPABILITIES
    from ..linux.seccomp import FLAGS as SECCOMP_FLAGS
    from ..linux.seccomp import flag_supported, libseccomp_version
    from ..linux.syscalls import NAMESPACES
    from ..security.seccomp import ACTIONS, ARCHES, OPS

    seccomp_on = _seccomp_in_kernel()
    doc: dict = {
        "ociVersionMin": SPEC_VERSION_MIN,
        "ociVersionMax": SPEC_VERSION,
        "hooks": list(HOOKS),
        "mountOptions": sorted(set(mountflags.FLAGS) | set(mountflags.PROPAGATION)
                               | set(mountflags.EXTENSIONS)),
        "linux": {
            "namespaces": sorted(NAMESPACES),
            "capabilities": list(CAPABILITIES),
            "cgroup": dict(CGROUP),
            "seccomp": {
                "enabled": seccomp_on,
                "actions": sorted(ACTIONS),
                "operators": sorted(OPS),
                "archs": sorted(ARCHES),
                "knownFlags": list(SECCOMP_FLAGS),
                "supportedFlags": [n for n, f in SECCOMP_FLAGS.items() if seccomp_on and flag_supported(f)],
            },
            "apparmor": {"enabled": lsm.apparmor_enabled()},
            "selinux": {"enabled": lsm.selinux_enabled()},
            "intelRdt": {"enabled": False},
        },
        "annotations": {
            "io.github.pyrunc.checkpoint.enabled": "false",
            "io.github.pyrunc.commit": commit(),
            "io.github.pyrunc.version": __version__,
        },
    }
    libseccomp = libseccomp_version()
    if libseccomp:
        doc["annotations"]["io.github.seccomp.libseccomp.version"] = libseccomp
    doc["annotations"] = dict(sorted(doc["annotations"].items()))
    return doc


def _seccomp_in_kernel():
    """The kernel has seccomp (CONFIG_SECCOMP) when /proc/self/status shows a Seccomp: line."""
    try:
        with open("/proc/self/status") as f:
            if any(line.startswith("Seccomp:") for line in f):
                return True
    except OSError:
        pass
    return False
