#!/usr/bin/env bash
# Render the ASR training set and train the model on a lent GPU machine, in one call of at most
# TOTAL_S seconds (the device tool allows 10 minutes a command). Same recipe as the 2-core run
# (python -m export.asr.build data/train), with more renderings, the text-only lines spoken too, and bigger
# batches.
#
#   export/asr/train_on_gpu.sh WORK OUT        # then, here: python -m export.asr.build export --work WORK
#
# Env: TOTAL_S (default 540), DEVICE (cuda), MAX_ITEMS (smoke runs), WORKERS (nproc).
set -euo pipefail
work=$1 out=$2
total=${TOTAL_S:-540} device=${DEVICE:-cuda} workers=${WORKERS:-$(nproc)}
start=$(date +%s)
mkdir -p "$work" "$out"
python3 -m export.asr.build data --work "$work" --workers "$workers" --repeats 4 --yue-readings 1.0 \
    --concatenations 16000 --speak-lm-texts ${MAX_ITEMS:+--max-items "$MAX_ITEMS"}
left=$(( total - ($(date +%s) - start) - 25 ))
echo "data took $(( $(date +%s) - start )) s; training for $left s"
python3 -m export.asr.build train --work "$work" --device "$device" --budget-min "$(python3 -c "print($left / 60)")" \
    --max-frames 20000 --peak-lr 2e-3 --warmup-steps 300 --specaug-after 800 --dropout 0.1
cp "$work"/model.pt "$work"/train.json "$work"/data.json "$work"/vocab.json "$work"/split.json "$out"/
