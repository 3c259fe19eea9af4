#!/usr/bin/env bash
# Render the ASR training set and train the model on a lent GPU machine, in one call of at most
# TOTAL_S seconds (the device tool allows 10 minutes a command). Same recipe as the 2-core run
# (python -m export.asr.build data/train), with more renderings, the text-only lines spoken too, runs of
# dictionary words, and bigger batches.
#
#   export/asr/train_on_gpu.sh WORK OUT        # then, here: python -m export.asr.build export --work WORK
#
# The shipped model took four stages: the first without dictionary runs, from scratch (DICTIONARY_RUNS=0,
# TOTAL_S=540: 434 s of training), the second continued from the first's model.pt (INIT=..., 390 s of
# training), the third from the second's bundle with the text-only lines spoken once (INIT=edge/models/default/asr
# REPEATS=1 CONCATENATIONS=12000 DICTIONARY_RUNS=16000 TOTAL_S=515: 351 s of training, a second model at
# PEAK_LR=4e-4 beside it on the same data), the fourth from the third's bundle with new renderings of the same
# items (the third's settings plus RENDER_SEED=13 PEAK_LR=1.2e-3: 390 s), then that model.pt again on the same
# data (INIT=<its model.pt> PEAK_LR=4e-4: 255 s; three other candidates beside it); see the bundle's manifest,
# build.lineage, and benchmarks/results/asr_stage3.md and asr_stage4.md.
#
# Env: TOTAL_S (default 540), DEVICE (cuda), DICTIONARY_RUNS (20000), INIT (a model.pt, or a bundle folder
# such as edge/models/default/asr, to continue from: its characters keep their ids, lower peak learning
# rate (PEAK_LR, default 8e-4), SpecAugment from the first step), COMMON_CHARS=1 (widen the vocabulary to the
# common characters the runs carry; with INIT, its output layer is widened), REPEATS (4), CONCATENATIONS
# (16000), YUE_READINGS (1.0), RENDER_SEED (new renderings of the same split for a continuation), MAX_ITEMS
# (smoke runs), WORKERS (nproc), MORE_VOICES=1 (half the items spoken by voices.MORE_VARIANTS: 42 more espeak-ng
# speakers; on the 2-core box, session 19, they lowered the greedy CER but not the searched one).
set -euo pipefail
work=$1 out=$2
total=${TOTAL_S:-540} device=${DEVICE:-cuda} workers=${WORKERS:-$(nproc)} runs=${DICTIONARY_RUNS:-20000}
start=$(date +%s)
mkdir -p "$work" "$out"
python3 -m export.asr.build data --work "$work" --workers "$workers" --repeats "${REPEATS:-4}" \
    --yue-readings "${YUE_READINGS:-1.0}" --concatenations "${CONCATENATIONS:-16000}" --speak-lm-texts \
    --dictionary-runs "$runs" ${COMMON_CHARS:+--common-chars} ${MAX_ITEMS:+--max-items "$MAX_ITEMS"} \
    ${INIT:+--init "$INIT"} ${RENDER_SEED:+--render-seed "$RENDER_SEED"} ${MORE_VOICES:+--more-voices}
left=$(( total - ($(date +%s) - start) - 25 ))
echo "data took $(( $(date +%s) - start )) s; training for $left s"
if [ -n "${INIT:-}" ]; then schedule=(--init "$INIT" --peak-lr "${PEAK_LR:-8e-4}" --specaug-after 0)
else schedule=(--peak-lr 2e-3 --specaug-after 800); fi
python3 -m export.asr.build train --work "$work" --device "$device" --budget-min "$(python3 -c "print($left / 60)")" \
    --max-frames 20000 --warmup-steps 300 --dropout 0.1 "${schedule[@]}"
cp "$work"/model.pt "$work"/train.json "$work"/data.json "$work"/vocab.json "$work"/split.json "$out"/
