"""Dialogue: the script (话术), state tracking, policy and replies of one call."""
