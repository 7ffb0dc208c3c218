# pyrunc: `make demo` and `make test` do everything on a fresh Debian 12 machine (as root).
PYTHON_SYS ?= /usr/bin/python3
VENV       ?= .venv
PY         := $(VENV)/bin/python
APT_PKGS   := busybox-static libseccomp2 libseccomp-dev libcap-dev gcc python3-venv python3-dev runc uidmap
# the engines of the end-to-end tests (tests/engines): installed by `make test`, not by `make demo`
ENGINE_PKGS := docker.io containerd podman conmon catatonit
# the cgroup v2 lane: a throw-away VM whose host is cgroup v2 only (scripts in ../shared/vm)
VM_TOOLS   ?= $(abspath ../shared/vm)
VM_PKGS    := qemu-system-x86 linux-image-amd64 cpio xz-utils dbus-user-session
V2_TESTS   := tests/integration/test_cgroups_v2_host.py tests/integration/test_cgroups_v2.py tests/integration/test_cgroups_v2_devices.py
# the systemd lanes: a VM with systemd as PID 1 (cgroup v2, then hybrid v1 + systemd), booted once
# per lane; tests/vm/systemd-lane.sh runs these there (a file not in the checkout is reported)
V2_SYSTEMD_TESTS     := tests/integration/test_cgroups_systemd.py tests/integration/test_rootless.py
HYBRID_SYSTEMD_TESTS := tests/integration/test_cgroups_systemd.py
# `docker/podman run --rm` rounds (runc and pyrunc alternately) in the systemd lane: a benchmark,
# ~1 min per round under emulation, so off in `make test` (VM_BENCH_ROUNDS=3 turns it on there;
# `make bench-vm-engines` boots a VM for 15 rounds)
VM_BENCH_ROUNDS ?= 0
VM_LANES   := test-v2 test-v2-systemd test-hybrid-systemd
BUNDLE     ?= build/bundle
PREFIX     ?= /usr/local

.PHONY: setup setup-engines demo lint test test-vm test-v2 test-v2-systemd test-hybrid-systemd vm-assets unit \
	integration engines bench bench-engines engine-calls bench-vm-engines install clean

# Idempotent and quick when everything is there: only missing apt packages are installed,
# and the venv is rebuilt only when pyproject.toml changed.
setup: $(VENV)/.installed bin/pyrunc
	@[ "$$(id -u)" != 0 ] || $(SEAL)

# apt-install whichever of the packages $(1) are missing
define apt_missing
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing apt packages: $$missing"; \
		apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

$(VENV)/.installed: pyproject.toml
	$(call apt_missing,$(APT_PKGS))
	@$(UNSEAL)
	$(PYTHON_SYS) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]' --config-settings editable_mode=compat
	touch $@

# The launcher's interpreter: a copy of the system's (a venv's python is a symlink to it). pyrunc's
# first create/run/exec after boot (and `setup`) seals it: a read-only bind of the file onto
# itself (security/exeseal.py), so no container can overwrite it through /proc/PID/exe (runc's
# CVE-2019-5736). A file of our own: the seal never stands in the way of apt upgrading python.
# Replacing or removing it detaches the seal first (lazily: running processes keep theirs).
SEALED_PY := $(VENV)/bin/pyrunc-python
# The tests run on it too: the Python API (pyrunc.Runtime) creates containers only from a sealed
# interpreter, and the API tests call it in-process.
TEST_PY := $(SEALED_PY)
# Seal it now (as root), not at a test's first create: a mount appearing mid-test is a leak
SEAL = $(SEALED_PY) -I -m pyrunc.security.exeseal
UNSEAL = while mountpoint -q $(SEALED_PY) 2>/dev/null; do umount -l $(SEALED_PY) || break; done

$(SEALED_PY): $(VENV)/.installed $(realpath $(PYTHON_SYS))
	@$(UNSEAL)
	@cp $(realpath $(PYTHON_SYS)) $@.tmp && chmod 0755 $@.tmp && mv -f $@.tmp $@

# The launcher: -I ignores PYTHON* variables (PYTHONDONTWRITEBYTECODE would make every call
# recompile); -S skips `site` (~4 ms of every call), so the launcher names the two directories
# pyrunc imports from: this checkout and the venv's site-packages, after the standard library (as
# site would order them: stdlib imports then find their module at the first place they look).
# Byte code is compiled here once.
SITE_PACKAGES = $(shell $(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null)
bin/pyrunc: Makefile $(VENV)/.installed $(SEALED_PY) $(shell find pyrunc -name '*.py')
	@mkdir -p bin
	@printf '#!%s -IS\nimport sys\nsys.path += ["%s", "%s"]\nfrom pyrunc.cli.main import entry\nentry()\n' \
		"$(abspath $(SEALED_PY))" "$(CURDIR)" "$(SITE_PACKAGES)" > $@
	@chmod +x $@
	@$(PY) -m compileall -q pyrunc

$(BUNDLE)/config.json: tests/bundle.py | setup
	$(PY) tests/bundle.py $(BUNDLE)

demo: setup $(BUNDLE)/config.json
	@echo "== pyrunc --version"; bin/pyrunc --version
	@echo "== pyrunc run demo (bundle $(BUNDLE))"
	bin/pyrunc --root /run/pyrunc-demo run --bundle $(BUNDLE) demo-$$$$

setup-engines: setup
	$(call apt_missing,$(ENGINE_PKGS))

# the linter and the type checker (configured in pyproject.toml), then the suites
lint: setup
	$(VENV)/bin/ruff check pyrunc tests conformance
	$(VENV)/bin/mypy

test: setup setup-engines lint
	$(TEST_PY) -m pytest -q -p no:cacheprovider tests
	$(MAKE) --no-print-directory test-vm

# Every VM lane, one after the other (each boots its own VM once); all run even when one fails,
# then each lane's outcome and wall time is printed (and kept in build/vm/lanes.txt).
test-vm: setup setup-engines vm-assets
	@mkdir -p build/vm; : > build/vm/lanes.txt; rc=0; \
	for lane in $(VM_LANES); do \
		t0=$$(date +%s); \
		if $(MAKE) --no-print-directory $$lane; then r=passed; else r=FAILED; rc=1; fi; \
		echo "lane $$lane: $$r, wall $$(( $$(date +%s) - t0 ))s" | tee -a build/vm/lanes.txt; \
	done; \
	echo "== VM lanes"; cat build/vm/lanes.txt; exit $$rc

# The VM's kernel and initramfs (in /tmp/vm; rebuilt each time: quick)
vm-assets:
ifneq ($(wildcard $(VM_TOOLS)/run-in-vm.sh),)
	$(call apt_missing,$(VM_PKGS))
	@sh "$(VM_TOOLS)/build.sh" >/dev/null
endif

NO_VM = @echo "$@: NOT RUN: no VM scripts at $(VM_TOOLS) (set VM_TOOLS=)"

# The same checkout, inside a VM booted on this host's kernel with cgroup v1 disabled (software
# emulation, ~1 min): the tests of a pure cgroup v2 host, for real. They skip on this hybrid host.
test-v2: setup vm-assets
ifeq ($(wildcard $(VM_TOOLS)/run-in-vm.sh),)
	$(NO_VM)
else
	"$(VM_TOOLS)/run-in-vm.sh" -s "$(CURDIR)" -t 1200 -- \
		sh -c '$(SEAL) && PYRUNC_REQUIRE_V2=1 $(TEST_PY) -m pytest -q -p no:cacheprovider $(V2_TESTS)'
endif

# A cgroup v2 VM with systemd as PID 1 (--systemd; ~30 s to boot): pyrunc's systemd driver tests,
# then docker, podman and ctr on their default (systemd) cgroup driver with runc and pyrunc (the
# matrix, build/vm/engines-systemd-matrix.md), rootless podman (if its tests are there), and the
# `run --rm` benchmark if VM_BENCH_ROUNDS > 0 (build/vm/engines-bench-systemd.md). Never share /tmp into this VM.
test-v2-systemd: setup setup-engines vm-assets
ifeq ($(wildcard $(VM_TOOLS)/run-in-vm.sh),)
	$(NO_VM)
else
	"$(VM_TOOLS)/run-in-vm.sh" --systemd -s "$(CURDIR)" -t 3000 -- \
		tests/vm/systemd-lane.sh --expect v2 --engines --rootless --bench $(VM_BENCH_ROUNDS) -- $(V2_SYSTEMD_TESTS)
endif

# A hybrid host (cgroup v1 controllers + systemd's unified hierarchy) with systemd as PID 1: the VM
# script is generated from run-in-vm.sh into build/vm (tests/vm/make-hybrid-vm.sh).
test-hybrid-systemd: setup vm-assets
ifeq ($(wildcard $(VM_TOOLS)/run-in-vm.sh),)
	$(NO_VM)
else
	@sh tests/vm/make-hybrid-vm.sh "$(VM_TOOLS)" build/vm/run-in-vm-hybrid.sh
	build/vm/run-in-vm-hybrid.sh --systemd -s "$(CURDIR)" -t 1800 -- \
		tests/vm/systemd-lane.sh --expect hybrid -- $(HYBRID_SYSTEMD_TESTS)
endif

unit: setup
	$(TEST_PY) -m pytest -q -p no:cacheprovider tests/unit

integration: setup
	$(TEST_PY) -m pytest -q -p no:cacheprovider tests/integration

# docker, podman and ctr running containers on pyrunc (PYRUNC_E2E_RUNTIMES=pyrunc,runc: runc too)
engines: setup-engines
	$(TEST_PY) -m pytest -q -p no:cacheprovider tests/engines

# every verb, pyrunc vs runc and crun alternately (conformance/bench.py; the table also in
# build/bench.md). BENCH_ARGS passes options, e.g. BENCH_ARGS='--only run,state --pyrunc ../before/bin/pyrunc'
BENCH_ARGS ?=
bench: setup
	$(call apt_missing,crun)
	$(PY) conformance/bench.py build/bench-bundle --out build/bench.md $(BENCH_ARGS)

bench-engines: setup-engines
	$(PY) conformance/engines_bench.py --out build/bench-engines.md

# which runtime calls docker, podman and containerd make per container and how long each takes,
# runc and pyrunc alternately, each behind a logging wrapper (ENGINE_CALLS_ROUNDS rounds)
ENGINE_CALLS_ROUNDS ?= 10
engine-calls: setup-engines
	$(PY) conformance/engine_calls.py $(ENGINE_CALLS_ROUNDS)

# `docker/podman run --rm` on the systemd driver, runc and pyrunc alternately, in the --systemd VM
bench-vm-engines: setup setup-engines vm-assets
	"$(VM_TOOLS)/run-in-vm.sh" --systemd -s "$(CURDIR)" -t 3000 -- \
		tests/vm/systemd-lane.sh --expect v2 --bench 15

# A self-contained install, nothing of the checkout (DESTDIR stages it for a package):
#   $(PREFIX)/lib/pyrunc/site-packages     pyrunc's wheel and its runtime dependencies (no test extra)
#   $(PREFIX)/lib/pyrunc/bin/pyrunc-python the interpreter copy the launcher runs: a file of ours,
#                                          sealed in place at the first create (security/exeseal.py)
#   $(PREFIX)/lib/pyrunc/pyvenv.cfg        `home`: where that copy finds the standard library
#   $(PREFIX)/bin/pyrunc                   the launcher (-IS, as bin/pyrunc)
# Byte code is compiled for the final paths (compileall -s DESTDIR). pip runs from the checkout's
# venv and builds the wheel in an isolated environment from the configured index.
LIBDIR := $(PREFIX)/lib/pyrunc
INST_PY = $(DESTDIR)$(LIBDIR)/bin/pyrunc-python
install: setup
	rm -rf build/wheel $(DESTDIR)$(LIBDIR)/site-packages
	$(PY) -m pip wheel -q --no-deps -w build/wheel .
	$(PY) -m pip install -q --no-compile --target $(DESTDIR)$(LIBDIR)/site-packages build/wheel/pyrunc-*.whl
	rm -rf $(DESTDIR)$(LIBDIR)/site-packages/bin
	$(PY) -m compileall -q $(if $(DESTDIR),-s $(DESTDIR) -p /) $(DESTDIR)$(LIBDIR)/site-packages
	@mkdir -p $(DESTDIR)$(LIBDIR)/bin $(DESTDIR)$(PREFIX)/bin
	@while mountpoint -q $(INST_PY) 2>/dev/null; do umount -l $(INST_PY) || break; done
	cp $(realpath $(PYTHON_SYS)) $(INST_PY).tmp && chmod 0755 $(INST_PY).tmp && mv -f $(INST_PY).tmp $(INST_PY)
	printf 'home = %s\ninclude-system-site-packages = false\n' "$(patsubst %/,%,$(dir $(realpath $(PYTHON_SYS))))" \
		> $(DESTDIR)$(LIBDIR)/pyvenv.cfg
	printf '#!%s -IS\nimport sys\nsys.path += ["%s"]\nfrom pyrunc.cli.main import entry\nentry()\n' \
		"$(LIBDIR)/bin/pyrunc-python" "$(LIBDIR)/site-packages" > $(DESTDIR)$(PREFIX)/bin/pyrunc
	chmod 0755 $(DESTDIR)$(PREFIX)/bin/pyrunc

clean:
	@$(UNSEAL)
	rm -rf build bin $(VENV)
