"""Evaluation: the SR benchmark protocol (`protocol`), the in-training validator (`validation`),
eval.py's up-front checks (`checks`) and the sweep over the nested levels of one checkpoint
(`level_sweep`).

The protocol's API is re-exported here, so `from memsr_jax import evaluation` then
`evaluation.evaluate_dataset(...)` reads as before.
"""
from memsr_jax.evaluation.protocol import PredictFn
from memsr_jax.evaluation.protocol import evaluate_dataset
from memsr_jax.evaluation.protocol import format_table
from memsr_jax.evaluation.protocol import summary

__all__ = ["PredictFn", "evaluate_dataset", "format_table", "summary"]
