# pyrunc: `make demo` and `make test` do everything on a fresh Debian 12 machine (as root).
PYTHON_SYS ?= /usr/bin/python3
VENV       ?= .venv
PY         := $(VENV)/bin/python
APT_PKGS   := busybox-static libseccomp2 libseccomp-dev libcap-dev gcc python3-venv python3-dev runc
BUNDLE     ?= build/bundle
PREFIX     ?= /usr/local

.PHONY: setup demo test unit integration bench install clean

# Idempotent and quick when everything is there: only missing apt packages are installed,
# and the venv is rebuilt only when pyproject.toml changed.
setup: $(VENV)/.installed bin/pyrunc

$(VENV)/.installed: pyproject.toml
	@missing=$$(for p in $(APT_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing apt packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	$(PYTHON_SYS) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]' --config-settings editable_mode=compat
	touch $@

# The launcher: -I ignores PYTHON* variables (PYTHONDONTWRITEBYTECODE would make every call
# recompile), and the byte code is compiled here once.
bin/pyrunc: $(VENV)/.installed $(shell find pyrunc -name '*.py')
	@mkdir -p bin
	@printf '#!%s -I\nfrom pyrunc.cli.main import entry\nentry()\n' "$(abspath $(PY))" > $@
	@chmod +x $@
	@$(PY) -m compileall -q pyrunc

$(BUNDLE)/config.json: tests/bundle.py | setup
	$(PY) tests/bundle.py $(BUNDLE)

demo: setup $(BUNDLE)/config.json
	@echo "== pyrunc --version"; bin/pyrunc --version
	@echo "== pyrunc run demo (bundle $(BUNDLE))"
	bin/pyrunc --root /run/pyrunc-demo run --bundle $(BUNDLE) demo-$$$$

test: setup
	$(PY) -m pytest -q -p no:cacheprovider tests

unit: setup
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

integration: setup
	$(PY) -m pytest -q -p no:cacheprovider tests/integration

bench: setup $(BUNDLE)/config.json
	$(PY) conformance/bench.py $(BUNDLE)

# The launcher runs this checkout's venv python with -I; it stays valid while the checkout does.
install: setup
	install -D -m 0755 bin/pyrunc $(DESTDIR)$(PREFIX)/bin/pyrunc

clean:
	rm -rf build bin $(VENV)
