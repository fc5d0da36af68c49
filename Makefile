# Vitals: `make run` starts the agent on the example config; `make test` runs every test.
SWIFT   ?= swift
CONFIG  ?= etc/vitals.yaml
PREFIX  ?= /usr/local
DESTDIR ?=

BIN      = .build/debug/vitals
RELEASE  = .build/release/vitals

.PHONY: all deps build release run test bench fuzz install uninstall clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# Runs in the foreground with state in ./.vitals; no root needed. Ctrl-C stops it.
run: build
	$(BIN) run -c $(CONFIG)

test: deps
	@scripts/install-deps.sh test
	$(SWIFT) build --build-tests
	# One test at a time: the suites start real processes and servers, and on a
	# small machine parallel suites starve each other's timeouts.
	$(SWIFT) test --skip-build --no-parallel

bench: deps
	@scripts/install-deps.sh bench test
	scripts/bench.sh

fuzz: deps
	scripts/fuzz.sh

# `make install [PREFIX=/usr/local] [SYSCONFDIR=/etc] [DESTDIR=/staging]` installs:
#   $(PREFIX)/bin/vitals                       the binary (INSTALL_BIN; the default builds a release)
#   $(PREFIX)/share/vitals/scripts/            the example scripts
#   $(PREFIX)/share/vitals/vitals.yaml         the example config, as installed below
#   $(SYSCONFDIR)/vitals/vitals.yaml           that config, with state in $(STATEDIR) and the scripts'
#                                              installed paths; never over an existing one (then it
#                                              goes to vitals.yaml.example beside it)
#   $(UNITDIR)/vitals.service                  the systemd unit, with these paths put in
#   $(SYSUSERSDIR)/vitals.conf                 the "vitals" system user, for systemd-sysusers
# SYSCONFDIR is /etc whatever the PREFIX, so the config is where operators look
# (and where the cron example says); `make install SYSCONFDIR=/usr/local/etc` to change it.
# `make install INSTALL_BIN=.build/debug/vitals` installs a binary already built, without a release build.
# `make uninstall` with the same variables removes all of it, except a config that was edited
# since (it is the operator's) and the agent's state in $(STATEDIR).
SYSCONFDIR  ?= /etc
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
INSTALL_BIN ?= $(RELEASE)
# Fixed by the unit's StateDirectory=vitals.
STATEDIR     = /var/lib/vitals

CONFIG_DIR   = $(DESTDIR)$(SYSCONFDIR)/vitals
SHARE_DIR    = $(DESTDIR)$(PREFIX)/share/vitals
CONFIG_SED   = -e 's|\./\.vitals|$(STATEDIR)|g' -e 's|\./scripts/|$(PREFIX)/share/vitals/scripts/|g'
UNIT_SED     = -e 's|/usr/local/bin/vitals|$(PREFIX)/bin/vitals|g' -e 's|/etc/vitals/|$(SYSCONFDIR)/vitals/|g'

install: $(if $(filter $(RELEASE),$(INSTALL_BIN)),release)
	install -D -m 0755 $(INSTALL_BIN) $(DESTDIR)$(PREFIX)/bin/vitals
	install -d $(SHARE_DIR)/scripts
	install -m 0755 etc/scripts/*.sh $(SHARE_DIR)/scripts/
	sed $(CONFIG_SED) etc/vitals.yaml > $(SHARE_DIR)/vitals.yaml
	chmod 0644 $(SHARE_DIR)/vitals.yaml
	install -d $(CONFIG_DIR)
	@if [ -e $(CONFIG_DIR)/vitals.yaml ]; then \
	  echo "install -m 0644 $(SHARE_DIR)/vitals.yaml $(CONFIG_DIR)/vitals.yaml.example"; \
	  install -m 0644 $(SHARE_DIR)/vitals.yaml $(CONFIG_DIR)/vitals.yaml.example; \
	  echo "make install: kept the existing $(CONFIG_DIR)/vitals.yaml; the new example is vitals.yaml.example"; \
	else \
	  echo "install -m 0644 $(SHARE_DIR)/vitals.yaml $(CONFIG_DIR)/vitals.yaml"; \
	  install -m 0644 $(SHARE_DIR)/vitals.yaml $(CONFIG_DIR)/vitals.yaml; \
	fi
	install -d $(DESTDIR)$(UNITDIR)
	sed $(UNIT_SED) etc/systemd/vitals.service > $(DESTDIR)$(UNITDIR)/vitals.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/vitals.service
	install -D -m 0644 etc/systemd/vitals.sysusers.conf $(DESTDIR)$(SYSUSERSDIR)/vitals.conf
	@[ -n "$(DESTDIR)" ] || echo "make install: now systemd-sysusers && systemctl daemon-reload && systemctl enable --now vitals"

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/vitals
	rm -f $(DESTDIR)$(UNITDIR)/vitals.service $(DESTDIR)$(SYSUSERSDIR)/vitals.conf
	rm -f $(CONFIG_DIR)/vitals.yaml.example
	@if [ -e $(CONFIG_DIR)/vitals.yaml ]; then \
	  if cmp -s $(CONFIG_DIR)/vitals.yaml $(SHARE_DIR)/vitals.yaml; then \
	    echo "rm -f $(CONFIG_DIR)/vitals.yaml"; rm -f $(CONFIG_DIR)/vitals.yaml; \
	  else \
	    echo "make uninstall: kept $(CONFIG_DIR)/vitals.yaml: it was edited after install"; \
	  fi; \
	fi
	@rmdir $(CONFIG_DIR) 2>/dev/null || true
	rm -rf $(SHARE_DIR)

clean:
	rm -rf .build .build-* .vitals
