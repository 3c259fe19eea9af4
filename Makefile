# Two entry points a newcomer needs: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test venv bench bench-nlu export-default install-service clean

$(BIN)/salesbot: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, from the CPU wheel on disk, so nothing pulls a CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[export,dev,kiosk]'
	touch $@

venv: $(BIN)/salesbot

demo: venv
	$(BIN)/salesbot call --text edge/data/demo/caller.txt --lead 张总,华星科技 --no-record
	$(BIN)/salesbot intent "喂 你们这个软件多少钱 能对接企业微信吗" "听日再打过嚟啦 而家好忙"
	$(BIN)/salesbot demo --out demo.wav

test: venv
	$(BIN)/python -m pytest -q

# Each benchmark prints its table and writes JSON + Markdown to benchmarks/results/.
bench: venv
	$(BIN)/python benchmarks/intent.py
	$(BIN)/python benchmarks/kb.py
	$(BIN)/python benchmarks/dialogue.py
	$(BIN)/python benchmarks/transport.py

bench-nlu: venv
	$(BIN)/python benchmarks/robustness.py
	$(BIN)/python benchmarks/fewshot.py

# Rebuilds the committed built-in bundle from the project's corpus (~25 min, 2 cores), then its few-shot head.
export-default: venv
	$(BIN)/salesbot export intent --corpus export/data/intents --train-extra export/data/train_extra --out runs/intent --slim-copy edge/models/default/intent
	$(BIN)/python -m export.fewshot_head --bundle edge/models/default/intent --corpus export/data/intents

# Writes /etc/systemd/system/edge-salesbot.service for this checkout's .venv (run as root).
install-service: venv
	$(BIN)/salesbot systemd install --prefix $(abspath $(VENV))

clean:
	rm -rf $(VENV) .pytest_cache
