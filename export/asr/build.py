"""Build the built-in ASR bundle, step by step, reproducible from the command line.

\b
    python -m export.asr.build data   --work runs/asr    # texts -> speech -> fbank (~5 min)
    python -m export.asr.build train  --work runs/asr    # CTC training (--budget-min, default 35)
    python -m export.asr.build export --work runs/asr --out edge/models/default/asr
    python -m export.asr.build all    --work runs/asr --out edge/models/default/asr
    python -m export.asr.build rescoring --work runs/asr-rescoring --out edge/models/default/asr  # ~5 min
    python -m export.asr.build graphs --work runs/asr-graphs --out edge/models/default/asr  # ~6 min

Each step writes its artefacts and a JSON record under --work; `export`
gathers them into the bundle's manifest.json. `export` and `rescoring` end
by rebuilding the decoding graphs (`graphs`), which are built from the
rescoring's n-grams.

The shipped model took six stages (the bundle's manifest, build.lineage): four on lent GPUs
(export/asr/train_on_gpu.sh), the fifth and sixth on this 2-core box. The fifth continued stage 4's
model.pt (runs of session 13, not kept; stage 4's bundle is in git history at 8d5cc31, and `--init` on that
folder recovers its INT8 weights, the nearest start a fresh clone has) on a random share of its items plus
more renderings of the lines with English words; the sixth continued the fifth's bundle (in git history at
8ea9fa6) the same way, with a new draw and three renderings of those lines:

\b
    python -m export.asr.build data --work W --init STAGE4/model.pt --repeats 1 --yue-readings 1.0 \\
        --concatenations 12000 --speak-lm-texts --dictionary-runs 16000 --render-seed 16 \\
        --sample-items 15000 --latin-repeats 2                       # ~5 min
    python -m export.asr.build train --work W --init STAGE4/model.pt --budget-min 25 --max-frames 8000 \\
        --peak-lr 3e-4 --warmup-steps 100 --specaug-after 0 --dropout 0.1 --blend 0.85
    python -m export.asr.build data --work W6 --init STAGE5 --repeats 1 --yue-readings 1.0 \\
        --concatenations 12000 --speak-lm-texts --dictionary-runs 16000 --render-seed 17 \\
        --sample-items 15000 --latin-repeats 3
    python -m export.asr.build train --work W6 --init STAGE5 --budget-min 25 --max-frames 8000 \\
        --peak-lr 3e-4 --warmup-steps 100 --specaug-after 0 --dropout 0.1 --blend 0.7
    python -m export.asr.build export --work W6 --out edge/models/default/asr   # ~40 min
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path

_LOGGER = logging.getLogger("export.asr")
CORPUS_DIR = Path(__file__).resolve().parents[1] / "data" / "intents"


def step_data(work: Path, corpus: Path, seed: int, concatenations: int, repeats: int = 2,
              yue_readings: float = 0.5, workers: int = 2, max_items: int | None = None,
              speak_lm_texts: bool = False, dictionary_runs: int = 0, common_chars: bool = False,
              base_vocab: list[str] | None = None, render_seed: int | None = None, sample_items: int | None = None,
              latin_repeats: int = 0, more_voices: bool = False) -> dict:
    """``base_vocab``: characters that keep their ids (a model to continue from), the spoken texts' others
    after them; by default all are ordered by frequency. ``render_seed`` (default ``seed``) draws the
    renderings, concatenations and dictionary runs; ``seed`` alone draws the train/test split, so a
    continuation can hear new renderings of the same training texts. ``sample_items``: render that many of
    the planned items, drawn at random, plus ``latin_repeats`` more renderings of each Mandarin text with
    English words (dataset.resampled; a continuation on the 2-core box). ``more_voices``: half the items
    are spoken by voices.MORE_VARIANTS."""
    from export.asr import dataset, texts

    start = time.monotonic()
    render_seed = seed if render_seed is None else render_seed
    utterances, split = asr_split(corpus, seed)
    held_out = held_out_texts(split)
    spoken = split.train + (lm_utterances(held_out) if speak_lm_texts else [])
    trained_vocab = dataset.vocabulary([u.text for u in spoken])
    if base_vocab:
        kept = set(base_vocab)
        trained_vocab = base_vocab + [c for c in trained_vocab if c not in kept]
    vocab = texts.widened_vocabulary(trained_vocab) if common_chars else trained_vocab
    runs = texts.dictionary_runs(vocab, held_out, dictionary_runs, render_seed) if dictionary_runs else []
    items = dataset.plan(spoken, repeats=repeats, concatenations=concatenations, seed=render_seed,
                         yue_readings=yue_readings, once=runs)
    planned = len(items)
    if sample_items is not None:
        items = dataset.resampled(items, spoken, sample_items, latin_repeats, render_seed)
    items = items[:max_items]
    if more_voices:
        items = [dataclasses.replace(item, more_voices=True) for item in items]
    work.mkdir(parents=True, exist_ok=True)
    (work / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (work / "split.json").write_text(json.dumps(
        {"train": [u.__dict__ for u in split.train], "test": [u.__dict__ for u in split.test]},
        ensure_ascii=False, indent=0), encoding="utf-8")
    dataset.build(items, vocab, work / "data.npz", workers=workers)
    root = Path(__file__).resolve().parents[2]
    shown = corpus.resolve().relative_to(root) if corpus.resolve().is_relative_to(root) else corpus
    record = {"corpus": str(shown), "corpus_rows_used": len(utterances), "train_texts": len(split.train),
              "test_texts": len(split.test),
              "lm_texts_spoken": len(spoken) - len(split.train), "dictionary_runs": len(runs),
              "characters_kept": len(base_vocab or []), "characters_added": len(vocab) - len(trained_vocab),
              "items": len(items), "items_planned": planned, "sample_items": sample_items,
              "latin_repeats": latin_repeats if sample_items is not None else 0, "more_voices": more_voices,
              "vocab_size": len(vocab) + 1,
              "seconds": round(time.monotonic() - start), "seed": seed, "render_seed": render_seed,
              "concatenations": concatenations,
              "repeats": repeats, "yue_readings": yue_readings, "workers": workers}
    (work / "data.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    _LOGGER.info("data: %s", record)
    return record


def asr_split(corpus: Path, seed: int):
    """(every utterance, the train/test split): the same for the same corpus, script lines and seed."""
    from export.asr import texts

    utterances = texts.load_corpus(corpus) + texts.load_lines()
    return utterances, texts.split(utterances, seed=seed, held_groups=held_out_groups(corpus, utterances, seed))


def held_out_texts(split) -> list[str]:
    """Every text the CER is measured on: the split's test texts and the evaluation-only ones. Nothing
    spoken in training may contain one (until session 12 the text-only lines were checked against the first
    only, so 6 evaluation-only texts left the held-out set instead)."""
    from export.asr import texts

    return [u.text for u in split.test + texts.load_extra_heldout([])[0]]


def lm_utterances(held_out: list[str]) -> list:
    """The text-only lines (less those overlapping a held-out text) as utterances to speak in training:
    more sentences and characters for the acoustic model, without touching the split or the n-grams."""
    from export.asr import texts

    return [texts.Utterance(text, lang, f"lm-{lang}-{n}")
            for lang in sorted(texts.LM_TEXT_FILES) for n, text in enumerate(texts.lm_texts(lang, held_out)[0])]


def held_out_groups(corpus: Path, utterances, seed: int) -> set[str]:
    """The intent model's test families (same corpus, same seed) plus 8% of the script lines.

    Holding out exactly what the intent benchmark tests on lets benchmarks/robustness.py feed the NLU
    the ASR's transcripts of sentences neither model was trained on.
    """
    import random

    from edge.nlu.labelled import read_corpus
    from export.corpus import split_by_family

    families = {e.family for e in split_by_family(read_corpus([corpus]), seed=seed).test}
    lines = sorted({u.group for u in utterances if u.group.startswith("line-")})
    random.Random(seed).shuffle(lines)
    return families | set(lines[:max(1, round(len(lines) * 0.08))])


def step_train(work: Path, budget_min: float, seed: int, init: Path | None = None, **options) -> dict:
    """``options``: TrainConfig fields (device, max_frames, peak_lr, ...) and ``dropout`` for the model.
    ``init``: a model.pt, or a bundle folder whose INT8 model is recovered (export.asr.recover)."""
    from export.asr.model import ModelConfig
    from export.asr.train import TrainConfig, train

    vocab = json.loads((work / "vocab.json").read_text(encoding="utf-8"))
    if init is not None and init.is_dir():
        from export.asr.recover import write_recovered

        init = write_recovered(init, work / "init-recovered.pt")
    if init is not None:
        init = _widened(init, vocab, work)
    model_config = ModelConfig(vocab_size=len(vocab) + 1, dropout=options.pop("dropout", 0.0))
    config = TrainConfig(budget_s=budget_min * 60, seed=seed, init=str(init) if init else None, **options)
    return train(work / "data.npz", len(vocab) + 1, work, config, model_config)


def _widened(init: Path, vocab: list[str], work: Path) -> Path:
    """``init`` itself, or where ``vocab`` has more characters than its output layer (build data
    --common-chars), a copy widened to all of them (export.asr.train.widen_head)."""
    import torch

    from export.asr.lexicon import build_lexicon
    from export.asr.train import widen_head

    state = torch.load(init, map_location="cpu")
    rows = state["head.weight"].shape[0]
    if rows == len(vocab) + 1:
        return init
    if rows > len(vocab) + 1:
        raise ValueError(f"{init} has {rows - 1} characters, more than {work}/vocab.json's {len(vocab)}")
    widened = work / "init-widened.pt"
    torch.save(widen_head(state, vocab, build_lexicon(vocab, "cmn")), widened)
    _LOGGER.info("widened %s from %d to %d characters", init, rows - 1, len(vocab))
    return widened


def _vocab_of(init: Path) -> list[str]:
    """The characters (blank excluded) of a bundle folder (tokens.txt) or of a model.pt (vocab.json beside it)."""
    path = init / "tokens.txt" if init.is_dir() else init.parent / "vocab.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: continuing from {init} needs its characters, to keep their ids")
    if init.is_dir():
        from export.asr.bundle import read_vocab

        return read_vocab(init)
    return json.loads(path.read_text(encoding="utf-8"))


def step_export(work: Path, out: Path, corpus: Path, seed: int, limit: int | None) -> dict:
    from export.asr.bundle import extra_heldout, write_bundle, write_vad_bundle

    manifest = write_bundle(work, out, seed=seed, limit=limit, extra=extra_heldout(corpus, seed))
    try:
        write_vad_bundle(out.parent / "vad")
    except RuntimeError as error:  # the ASR bundle is complete; the runtime's VAD is edge/models/default/vad
        _LOGGER.warning("%s is written, without a VAD bundle beside it: %s", out, error)
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("data", "train", "export", "all", "rescoring", "graphs"),
                        help="rescoring: rebuild and retune only the rescoring of the bundle --out, in place; "
                             "graphs: only its decoding graphs.")
    parser.add_argument("--work", type=Path, default=Path("runs/asr"), help="Working directory for artefacts.")
    parser.add_argument("--out", type=Path, default=Path("edge/models/default/asr"), help="Bundle directory.")
    parser.add_argument("--corpus", type=Path, default=CORPUS_DIR, help="Folder of intent CSVs (transcripts).")
    parser.add_argument("--budget-min", type=float, default=35.0, help="Training wall-clock minutes.")
    parser.add_argument("--concatenations", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=1234, help="Draws the train/test split (and, by default, the "
                        "renderings and the training order).")
    parser.add_argument("--init", type=Path, default=None,
                        help="Continue training from this model.pt (copy it first: train overwrites work/model.pt), "
                             "or from a bundle folder's INT8 model (edge/models/default/asr). data: keep its "
                             "characters' ids (the bundle's tokens.txt or the vocab.json beside the model.pt).")
    parser.add_argument("--limit", type=int, default=None, help="Held-out texts per language to score (smoke runs).")
    data = parser.add_argument_group("data")
    data.add_argument("--repeats", type=int, default=2, help="Renderings of each training text.")
    data.add_argument("--yue-readings", type=float, default=0.5, help="Share of Mandarin texts also read in yue.")
    data.add_argument("--workers", type=int, default=2, help="Rendering processes.")
    data.add_argument("--render-seed", type=int, default=None,
                      help="Draws the renderings, concatenations and dictionary runs (default: --seed); the split "
                           "stays --seed's.")
    data.add_argument("--max-items", type=int, default=None, help="Render only this many items (smoke runs).")
    data.add_argument("--sample-items", type=int, default=None,
                      help="Render this many of the planned items, drawn at random, plus --latin-repeats more "
                           "renderings of each Mandarin text with English words (a continuation on 2 cores).")
    data.add_argument("--latin-repeats", type=int, default=0, help="See --sample-items.")
    data.add_argument("--more-voices", action="store_true",
                      help="Speak half the items with the espeak-ng variants of voices.MORE_VARIANTS.")
    data.add_argument("--speak-lm-texts", action="store_true",
                      help="Also speak the text-only lines (export/asr/data/lm_texts_*.txt) in training.")
    data.add_argument("--dictionary-runs", type=int, default=0,
                      help="Also speak this many runs of random dictionary words (export.asr.texts.dictionary_runs).")
    data.add_argument("--common-chars", action="store_true",
                      help="Widen the vocabulary to the common characters the dictionary runs carry (GB 2312 "
                           "level 1), after the trained ones; --init then widens that model's output layer.")
    training = parser.add_argument_group("training")
    training.add_argument("--device", default="cpu", help="cpu, or cuda where a GPU is lent.")
    training.add_argument("--threads", type=int, default=2,
                          help="Torch threads: 2 on an idle 2-core box, 1 where other jobs share it.")
    training.add_argument("--max-frames", type=int, default=3000, help="Feature frames per batch.")
    training.add_argument("--peak-lr", type=float, default=1.5e-3)
    training.add_argument("--warmup-steps", type=int, default=400)
    training.add_argument("--specaug-after", type=int, default=1500)
    training.add_argument("--dropout", type=float, default=0.0)
    training.add_argument("--blend", type=float, default=1.0,
                          help="With --init: write blend x the trained weights + (1 - blend) x the start's.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.step in ("data", "all"):
        step_data(args.work, args.corpus, args.seed, args.concatenations, repeats=args.repeats,
                  yue_readings=args.yue_readings, workers=args.workers, max_items=args.max_items,
                  speak_lm_texts=args.speak_lm_texts, dictionary_runs=args.dictionary_runs,
                  common_chars=args.common_chars, base_vocab=_vocab_of(args.init) if args.init else None,
                  render_seed=args.render_seed, sample_items=args.sample_items, latin_repeats=args.latin_repeats,
                  more_voices=args.more_voices)
    if args.step in ("train", "all"):
        step_train(args.work, args.budget_min, args.seed, args.init, device=args.device, threads=args.threads,
                   max_frames=args.max_frames, peak_lr=args.peak_lr, warmup_steps=args.warmup_steps,
                   specaug_after=args.specaug_after, dropout=args.dropout, blend=args.blend)
    if args.step in ("export", "all"):
        step_export(args.work, args.out, args.corpus, args.seed, args.limit)
    if args.step == "rescoring":
        from export.asr.bundle import extra_heldout, update_rescoring

        _, split = asr_split(args.corpus, args.seed)
        update_rescoring(args.out, args.work, [u.__dict__ for u in split.train], args.limit,
                         extra=extra_heldout(args.corpus, args.seed))
    if args.step in ("export", "all", "rescoring", "graphs") and (args.limit is None or args.step == "graphs"):
        from export.asr.bundle import update_graphs

        update_graphs(args.out, args.work / "graphs", args.limit)


if __name__ == "__main__":
    main()
