"""Understanding what the caller said: intents (and, later, slots and mood)."""

from edge.nlu.intent import IntentModel, IntentResult

__all__ = ["IntentModel", "IntentResult"]
