"""Understanding what the caller said: intents (trained and few-shot)."""

from __future__ import annotations

from pathlib import Path

from edge.nlu.fewshot import FewShotIntentModel, FewShotStore
from edge.nlu.intent import IntentModel, IntentResult

__all__ = ["FewShotIntentModel", "FewShotStore", "IntentModel", "IntentResult", "fewshot_db", "open_intents"]


def fewshot_db(data_dir: Path) -> Path:
    return data_dir / "nlu.db"


def open_intents(config) -> IntentModel | FewShotIntentModel:
    """The intent model a box runs: the bundle, plus the few-shot intents its
    data directory holds (if any have been added)."""
    model = IntentModel.load(config.nlu.intent_bundle, engine=config.nlu.engine, threads=config.nlu.threads,
                             threshold=config.nlu.threshold, device=config.nlu.device)
    db = fewshot_db(config.data.resolved())
    if db.is_file():
        return FewShotIntentModel(model, FewShotStore(db))
    return model
