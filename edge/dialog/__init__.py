"""Dialogue: the script (话术), state tracking, policy and replies of one call."""

from edge.dialog.engine import Dialogue, Reply
from edge.dialog.script import Script
from edge.dialog.state import DialogueState

__all__ = ["Dialogue", "DialogueState", "Reply", "Script"]
