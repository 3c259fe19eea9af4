"""edge-salesbot: the offline runtime of the sales-call appliance."""

__version__ = "0.1.0"
