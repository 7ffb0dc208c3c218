#!/bin/bash
# The job of a --systemd VM (systemd as PID 1): `make test-v2-systemd` (cgroup v2) and
# `make test-hybrid-systemd` (cgroup v1 + systemd) boot the VM once and run this in the checkout.
#
#   tests/vm/systemd-lane.sh [--engines] [--bench ROUNDS] [--rootless] [--] PYTEST_FILE...
#
#   PYTEST_FILE...  pyrunc's own tests of the host (PYRUNC_REQUIRE_SYSTEMD=1: a skip for want of
#                   systemd is a failure); a file not in this checkout is reported, not run
#   --engines       docker, podman and ctr on their default (systemd) cgroup driver, with runc and
#                   pyrunc (tests/engines/test_engines_systemd.py); prints the matrix
#   --rootless      the rootless podman tests, if this checkout has them (the hook for
#                   tests/engines/test_rootless_podman.py)
#   --expect v2|hybrid  fail unless /sys/fs/cgroup has that layout (the VM is what the lane claims)
#   --bench ROUNDS  `docker/podman run --rm`, runc and pyrunc alternately (not a test: a failure
#                   there does not fail the lane)
# Reports go to build/vm/ (shared with the host). Exit status: 0 if every test step passed.
set -u
cd "$(dirname "$0")/../.." || exit 125
ENGINES=0 BENCH=0 ROOTLESS=0 EXPECT=
while [ $# -gt 0 ]; do
  case "$1" in
    --engines) ENGINES=1; shift ;;
    --rootless) ROOTLESS=1; shift ;;
    --bench) BENCH=$2; shift 2 ;;
    --expect) EXPECT=$2; shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
PY=.venv/bin/pyrunc-python
REPORT=build/vm
mkdir -p "$REPORT"
export PYRUNC_REQUIRE_SYSTEMD=1
STEPS=() RC=0

step() {  # step NAME CMD...: run, time, remember the outcome
  local name=$1 t0 rc; shift
  t0=$(date +%s)
  echo "== $name: $*"
  "$@"; rc=$?
  STEPS+=("$name: rc=$rc $(( $(date +%s) - t0 ))s")
  return $rc
}

echo "== host: $(uname -r), PID 1 $(readlink /proc/1/exe), $(systemctl is-system-running 2>&1)," \
     "/sys/fs/cgroup: $(stat -f -c %T /sys/fs/cgroup)" \
     "$([ -d /sys/fs/cgroup/unified ] && echo '+ unified (hybrid)')"
if [ -n "$EXPECT" ]; then
  case "$(stat -f -c %T /sys/fs/cgroup):$([ -d /sys/fs/cgroup/unified ] && echo unified)" in
    cgroup2fs:) LAYOUT=v2 ;;
    tmpfs:unified) LAYOUT=hybrid ;;
    *) LAYOUT=other ;;
  esac
  [ "$(readlink /proc/1/exe)" = /usr/lib/systemd/systemd ] || [ "$(readlink /proc/1/exe)" = /lib/systemd/systemd ] ||
    { echo "== FAIL: PID 1 is not systemd"; exit 1; }
  [ "$LAYOUT" = "$EXPECT" ] || { echo "== FAIL: cgroup layout is $LAYOUT, not $EXPECT"; exit 1; }
fi
# the seal of the interpreter (as `make test` does on the host): the tests expect it in place
$PY -I -m pyrunc.security.exeseal || exit 125

FILES=()
for f in "$@"; do
  if [ -f "$f" ]; then FILES+=("$f"); else echo "== NOT RUN: $f is not in this checkout"; STEPS+=("$f: NOT RUN (missing)"); fi
done
if [ ${#FILES[@]} -gt 0 ]; then
  step "pyrunc tests" $PY -m pytest -q -p no:cacheprovider --durations=5 "${FILES[@]}" || RC=1
fi

if [ "$ENGINES" = 1 ] || [ "$BENCH" != 0 ]; then
  # the engines' storage (overlay2, podman's overlay, containerd's snapshots) wants a file system
  # that can be an overlay's upper layer: not the VM's root (itself an overlay)
  mkdir -p /var/lib/pyrunc-e2e && mount -t tmpfs -o mode=0711 tmpfs /var/lib/pyrunc-e2e || exit 125
  # The VM's kernel has AppArmor, this machine has no apparmor_parser (package apparmor, which
  # the host suite does not want): dockerd would fail every start loading docker-default. Hide
  # securityfs, as on a host whose kernel has no AppArmor; the engines keep their defaults.
  mountpoint -q /sys/kernel/security && [ ! -x /sbin/apparmor_parser ] && umount /sys/kernel/security
fi
if [ "$ENGINES" = 1 ]; then
  step "engines (systemd driver)" $PY -m pytest -q -p no:cacheprovider --durations=5 tests/engines/test_engines_systemd.py || RC=1
fi
if [ "$ROOTLESS" = 1 ]; then
  if [ -f tests/engines/test_rootless_podman.py ]; then
    step "rootless podman" $PY -m pytest -q -p no:cacheprovider tests/engines/test_rootless_podman.py || RC=1
  else
    STEPS+=("rootless podman: NOT RUN (no tests/engines/test_rootless_podman.py)")
  fi
fi
if [ "$BENCH" != 0 ]; then
  step "bench (run --rm, systemd driver)" $PY conformance/engines_bench.py "$BENCH" --systemd \
    --engines docker,podman --out "$REPORT/engines-bench-systemd.md" || echo "== (the benchmark failed: not a test)"
fi

echo
[ -s "$REPORT/engines-systemd-matrix.md" ] && [ "$ENGINES" = 1 ] && { echo "== matrix ($REPORT/engines-systemd-matrix.md)"; cat "$REPORT/engines-systemd-matrix.md"; echo; }
[ -s "$REPORT/engines-bench-systemd.md" ] && [ "$BENCH" != 0 ] && { echo "== bench ($REPORT/engines-bench-systemd.md)"; cat "$REPORT/engines-bench-systemd.md"; echo; }
echo "== steps"
printf '   %s\n' "${STEPS[@]}"
exit $RC
