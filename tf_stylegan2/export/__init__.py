"""Exports of a generator: SavedModel for TF Serving, TFLite for phones."""
