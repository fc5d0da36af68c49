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
	$(SWIFT) test --skip-build

bench: deps
	@scripts/install-deps.sh bench
	scripts/bench.sh

fuzz: deps
	scripts/fuzz.sh

install: release
	install -D -m 0755 $(RELEASE) $(DESTDIR)$(PREFIX)/bin/vitals
	install -D -m 0644 etc/vitals.yaml $(DESTDIR)$(PREFIX)/share/vitals/vitals.yaml
	install -d $(DESTDIR)$(PREFIX)/share/vitals/scripts
	install -m 0755 etc/scripts/*.sh $(DESTDIR)$(PREFIX)/share/vitals/scripts/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/vitals
	rm -rf $(DESTDIR)$(PREFIX)/share/vitals

clean:
	rm -rf .build .build-* .vitals
