"""Build an OCI bundle from busybox-static: used by `make demo` and by the tests.

    python tests/bundle.py DIR [ARGS...]
"""

import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pyrunc.spec.default import default_config  # noqa: E402

BUSYBOX = "/bin/busybox"


def make_rootfs(rootfs):
    """A busybox rootfs with every applet linked, /etc/passwd and /etc/group; built once per path."""
    marker = os.path.join(rootfs, ".pyrunc-rootfs")
    if os.path.exists(marker):
        return rootfs
    os.makedirs(rootfs, exist_ok=True)
    os.chmod(rootfs, 0o755)  # it becomes "/": every user must be able to walk it
    for d in ("bin", "sbin", "etc", "tmp", "root", "proc", "sys", "dev", "home/user", "usr/bin"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
    if os.geteuid() == 0:  # a rootless user's rootfs is all theirs (uid 1000 is not mapped)
        os.chown(os.path.join(rootfs, "home/user"), 1000, 1000)
    shutil.copy2(BUSYBOX, os.path.join(rootfs, "bin/busybox"))
    applets = subprocess.run([BUSYBOX, "--list"], check=True, capture_output=True, text=True).stdout.split()
    for applet in applets:
        link = os.path.join(rootfs, "bin", applet)
        if applet != "busybox" and not os.path.lexists(link):
            os.symlink("busybox", link)
    with open(os.path.join(rootfs, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n"
                "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    with open(os.path.join(rootfs, "etc/group"), "w") as f:
        f.write("root:x:0:\ntty:x:5:\nuser:x:1000:\nnogroup:x:65534:\n")
    open(marker, "w").close()
    return rootfs


def make_bundle(path, args=("sh", "-c", "echo Hello from a pyrunc container: $(hostname); id"),
                rootfs=None, **overrides):
    """Write DIR/config.json (terminal off) and a rootfs; overrides replace top-level keys."""
    os.makedirs(path, exist_ok=True)
    path = os.path.abspath(path)
    if rootfs is None:
        rootfs = make_rootfs(os.path.join(path, "rootfs"))
    root_path = os.path.relpath(rootfs, path) if rootfs.startswith(os.path.abspath(path) + "/") else rootfs
    config = default_config(rootfs=root_path, args=args, terminal=False)
    config.update(overrides)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    return config


if __name__ == "__main__":
    make_bundle(sys.argv[1], *( [tuple(sys.argv[2:])] if len(sys.argv) > 2 else []))
    print(f"bundle written to {sys.argv[1]}")
