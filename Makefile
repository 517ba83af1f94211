# ketaclinic: the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export KETACLINIC_VAR_DIR ?= $(CURDIR)/var

.PHONY: run test lint typecheck test-sqlite test-postgres bench soak install clean-venv

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## make run: install, migrate the SQLite database under var/, load the demo clinic, serve on 127.0.0.1:8000
##   (`ketaclinic serve` also runs the background jobs: the safety sweeps that raise overdue-reading alerts
##   and escalate unacknowledged alerts, every minute)
## make run MONITORS=3: also start the monitor listener and 3 simulated bedside monitors on Harbor Street's chairs
MONITORS ?= 0
run: $(STAMP)
	$(BIN)/ketaclinic migrate --no-input
	$(BIN)/ketaclinic demo
	@echo ""
	@echo "Open http://127.0.0.1:8000/ and sign in with a demo login above."
	@if [ "$(MONITORS)" != "0" ]; then \
	  trap 'kill 0' EXIT INT TERM; \
	  $(BIN)/ketaclinic mllp --host 127.0.0.1 --port 2575 & \
	  sleep 2; $(BIN)/ketaclinic monitor-sim --chairs $(MONITORS) --interval 15s --seed 7 >/dev/null & \
	  $(BIN)/ketaclinic serve --host 127.0.0.1 --port 8000; \
	else $(BIN)/ketaclinic serve --host 127.0.0.1 --port 8000; fi

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

test-sqlite: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider

# Every database and browser test again on PostgreSQL when KETACLINIC_TEST_POSTGRES_URL is set.
test-postgres: $(STAMP)
	@if [ -n "$$KETACLINIC_TEST_POSTGRES_URL" ]; then \
	  KETACLINIC_TEST_DB=postgres $(BIN)/pytest -q -p no:cacheprovider -m "db or browser or postgres"; \
	else echo "KETACLINIC_TEST_POSTGRES_URL not set: PostgreSQL tests skipped"; fi

## make test: lint, type checks, the suite on SQLite, then on PostgreSQL (if configured)
test: lint typecheck test-sqlite test-postgres

## make bench: run every benchmark (each prints a ratio against a baseline measured in the same run)
bench: $(STAMP)
	@for b in bench/*.py; do case $$b in bench/soak.py) continue;; esac; \
	  echo "== $$b"; $(BIN)/python $$b || exit 1; done

## make soak: 200 SIGKILLs of the server and the monitor listener under write load (HL7, readings, register
##   receipts), on SQLite, then on a private PostgreSQL cluster crashed with `pg_ctl stop -m immediate`
##   (skipped without PostgreSQL binaries); every acknowledged write must survive whole, chains must verify.
##   SOAK_KILLS=500 for more.
SOAK_KILLS ?= 200
soak: $(STAMP)
	$(BIN)/python bench/soak.py --kills $(SOAK_KILLS)
	$(BIN)/python bench/soak.py --kills $(SOAK_KILLS) --postgres

clean-venv:
	rm -rf $(VENV)
