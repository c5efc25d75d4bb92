# DiffUnmix — one-command set-up, tests, demo, benchmarks and packaging.
# Works on a fresh Debian 12 machine (as root, or with sudo available).

SHELL := /bin/bash
PY := .venv/bin/python
VENV_STAMP := .venv/.stamp-deps
APT_PACKAGES := qgis python3-qgis python3-gdal python3-rasterio python3-scipy \
                python3-matplotlib python3-venv xvfb qttools5-dev-tools pyqt5-dev-tools zip
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)
PROFILE ?= default
QGIS_PLUGIN_DIR ?= $(HOME)/.local/share/QGIS/QGIS3/profiles/$(PROFILE)/python/plugins
export QT_QPA_PLATFORM ?= offscreen
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup apt venv test test-core test-qgis test-e2e test-pip test-desktop lint demo bench bench-speed \
        bench-accuracy package deploy translations clean fuzz

help:
	@echo "make setup | test | fuzz | demo | bench | bench-speed | bench-accuracy | lint | package | deploy | translations | clean"

## setup: Debian packages (only those missing), then .venv with torch and the test tools
setup: apt venv

apt:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: $(VENV_STAMP)

$(VENV_STAMP): requirements-dev.txt
	@test -x $(PY) || /usr/bin/python3 -m venv --system-site-packages .venv
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

## test: every tier (core without QGIS, QGIS with a real QgsApplication, e2e through qgis_process,
## pip: `pip install .[engine]` into a venv without system site packages, rasterio backend)
test: setup translations
	$(PY) -m pytest -q -p no:pytest_qgis tests/core
	$(PY) -m pytest -q tests/qgis
	$(PY) -m pytest -q tests/e2e
	$(PY) -m pytest -q -p no:pytest_qgis tests/desktop
	$(PY) -m pytest -q -p no:pytest_qgis tests/pip

## fuzz: the hypothesis fuzz tests of the raster, library and model-file readers, longer
## (FUZZ_EXAMPLES per parser, default 5000; `make test` runs 200, the model loader a tenth of it)
FUZZ_EXAMPLES ?= 5000
fuzz: setup
	DIFFUNMIX_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -p no:pytest_qgis --hypothesis-show-statistics \
	    tests/core/test_fuzz_parsers.py tests/core/hostile/test_fuzz_checkpoints.py

test-core: setup
	$(PY) -m pytest -q -p no:pytest_qgis tests/core

test-qgis: setup
	$(PY) -m pytest -q tests/qgis

test-e2e: setup
	$(PY) -m pytest -q tests/e2e

test-desktop: setup
	$(PY) -m pytest -q -p no:pytest_qgis tests/desktop

## test-pip: the pip-only tier (its venv is cached in ~/.cache/diffunmix/pip-venv; DIFFUNMIX_PIP_VENV moves it)
test-pip: setup
	$(PY) -m pytest -q -p no:pytest_qgis tests/pip

lint: setup
	$(PY) -m ruff check core plugin tests benchmarks

## demo: synthetic scene with known truth → unmix → scores
demo: setup
	@rm -rf demo_out && mkdir -p demo_out
	$(PY) -m core synth --out demo_out/scene --height 96 --width 96 --endmembers 4 --snr 30 --seed 7
	$(PY) -m core unmix demo_out/scene/scene.tif --endmembers 4 --out demo_out/result --seed 7
	$(PY) -m core evaluate --abundances demo_out/result/abundances.tif \
	    --reference-abundances demo_out/scene/truth_abundances.tif \
	    --endmembers demo_out/result/endmembers.csv \
	    --reference-endmembers demo_out/scene/truth_endmembers.csv \
	    --input demo_out/scene/scene.tif
	@echo "outputs: $$(pwd)/demo_out/result (abundances.tif, endmembers.csv, endmembers.png, report.json)"

## bench: heavy measurements (not part of the tests)
bench: setup
	$(PY) benchmarks/fcls_speed.py

## bench-speed / bench-accuracy: the long runs (about 10 and 30-40 minutes on 2 cores)
bench-speed: setup
	$(PY) benchmarks/speed.py

bench-accuracy: setup
	$(PY) benchmarks/accuracy.py

## translations: compile i18n/*.ts to .qm with Qt's lrelease
## (UPDATE_TS=1 first refreshes the .ts sources from plugin/ with pylupdate5, keeping existing translations)
translations:
	@if [ -n "$(UPDATE_TS)" ]; then for ts in i18n/*.ts; do [ -e "$$ts" ] || continue; \
	  pylupdate5 -noobsolete plugin/*.py plugin/algorithms/*.py -ts "$$ts"; done; fi
	@for ts in i18n/*.ts; do [ -e "$$ts" ] || continue; \
	  lrelease -silent "$$ts" -qm "$${ts%.ts}.qm" 2>/dev/null || lrelease-qt5 -silent "$$ts" -qm "$${ts%.ts}.qm"; done

## package: zip for QGIS "Install from ZIP" (no tests, benchmarks or caches)
package: translations
	/usr/bin/python3 scripts/package.py --out dist/diffunmix.zip

## deploy: link the plugin into a QGIS profile (PROFILE=default)
deploy:
	mkdir -p "$(QGIS_PLUGIN_DIR)"
	ln -sfn "$$(pwd)" "$(QGIS_PLUGIN_DIR)/diffunmix"
	@echo "linked into $(QGIS_PLUGIN_DIR)/diffunmix; enable DiffUnmix in QGIS' plugin manager"

clean:
	rm -rf demo_out dist build *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
