"""Audio at the edges of the runtime: codecs, resampling, VAD/endpointing, prosody features."""
