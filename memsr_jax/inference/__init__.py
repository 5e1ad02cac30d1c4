"""A model from any source (checkpoint, preset, PyTorch weights) and its forward pass
for scoring, under the precision policy."""
