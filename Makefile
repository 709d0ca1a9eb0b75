# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo multisite drift imaging test system-deps bench clean

# Debian packages: pango for WeasyPrint's PDF, poppler-utils to check PDFs, Chromium for the
# real-browser tests (driven by Playwright; never `playwright install`, which downloads).
SYSTEM_PACKAGES := chromium poppler-utils libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

# torch==2.13.0 first: the CPU build on this machine's disk. An unpinned torch would pull a
# CUDA build of several GB. Never torchvision.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

system-deps:
	@if ! command -v chromium >/dev/null || ! command -v pdftoppm >/dev/null \
	    || ! dpkg -s libharfbuzz-subset0 libpangoft2-1.0-0 >/dev/null 2>&1; then \
	  echo "installing Debian packages: $(SYSTEM_PACKAGES)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES) >/dev/null; \
	fi

# The audit of the embedded real example (CHOP SARS-CoV-2 tests 2020) -> reports/demo/.
# Exit 1 means a gate failed or could not decide (fail_on): the demo still wrote its reports,
# so only 0 and 1 are success.
demo: $(STAMP) system-deps
	@$(BIN)/future-audit run --config examples/covid_testing/audit.toml; rc=$$?; \
	if [ $$rc -gt 1 ]; then exit $$rc; fi; \
	echo "demo report: reports/demo/report.html (exit code $$rc: 0 all gates hold, 1 a gate failed or could not decide)"

# The multi-site audit of the second real example (MASS::Aids2, Australian AIDS patients
# 1982-1990; model developed on NSW, audited on held-out NSW, QLD, VIC, Other) -> reports/multisite/.
# Exit 1 means a gate failed or could not decide: the reports are still written, so 0 and 1 are success.
multisite: $(STAMP) system-deps
	@$(BIN)/future-audit run --config examples/multisite/audit.toml; rc=$$?; \
	if [ $$rc -gt 1 ]; then exit $$rc; fi; \
	echo "multisite report: reports/multisite/report.html (exit code $$rc: 0 all gates hold, 1 a gate failed or could not decide)"

# Drift of a simple cardiomegaly model on PadChest chest X-ray metadata (2013 against
# 2014-2017, month by month) -> reports/drift/. Exit 1 only if a gate failed; 0 and 1 are success.
drift: $(STAMP) system-deps
	@$(BIN)/future-audit run --config examples/drift/audit.toml; rc=$$?; \
	if [ $$rc -gt 1 ]; then exit $$rc; fi; \
	echo "drift report: reports/drift/report.html (exit code $$rc)"

# A small CNN that finds nodules on generated 64x64 chest radiograph-like images, with site and
# subgroup effects built in (examples/imaging/README.md): prepare.py generates the images and
# trains and exports the model (under a minute on 2 cores), then the TorchScript model is audited
# -> reports/imaging/. Exit 1 means a gate failed or could not decide: 0 and 1 are success.
imaging: $(STAMP) system-deps
	$(BIN)/python examples/imaging/prepare.py
	@$(BIN)/future-audit run --config examples/imaging/audit.toml; rc=$$?; \
	if [ $$rc -gt 1 ]; then exit $$rc; fi; \
	echo "imaging report: reports/imaging/report.html (exit code $$rc)"

# One worker per core; the browser tests share their fixtures on one worker (tests/browser/conftest.py).
test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q -n auto --dist loadgroup

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_fairness.py

clean:
	rm -rf $(VENV) reports/demo reports/multisite reports/drift reports/imaging dist build
