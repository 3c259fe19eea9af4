"""The export stage: corpus -> teacher -> distilled student -> INT8 -> bundle (needs torch)."""
