"""Scaffolding every method's stages share: per-stage configs and the small JSON files they leave.

A multi-stage method trains each stage with the engine on a copy of the run's config with a few
keys changed (`stage_config`), and records what a stage decided in a JSON file that a rerun reads
back instead of recomputing it (`write_json`).
"""
import copy
import pathlib
from typing import Any, Mapping

import jax
import ml_collections

from memsr_jax import jsonio


def stage_config(config, overrides: Mapping[str, Any]) -> ml_collections.ConfigDict:
  """A deep copy of `config` with `overrides` ({"schedule.lr": 1e-3, "total_steps": 10, …}) set.

  Keys are dotted paths of existing config keys; a key the config does not have raises ValueError
  naming the valid ones (a typo in a stage override must not be silently ignored).
  """
  c = copy.deepcopy(config) if isinstance(config, ml_collections.ConfigDict) else (
      ml_collections.ConfigDict(copy.deepcopy(dict(config))))
  with c.unlocked():
    for key, value in overrides.items():
      *head, last = key.split(".")
      node = c
      for h in head:
        node = node[h]
      if last not in node:
        where = ".".join(["config", *head])
        raise ValueError(f"stage override {key} is not a config key; valid keys of {where}: "
                         f"{sorted(node.keys())}")
      node[last] = value
  return c


def write_json(path: str | pathlib.Path, obj) -> None:
  """Writes `obj` as JSON to `path` atomically (`jsonio.write_json`), on process 0 only.

  Every process computes the same result; one writes it (the Orbax saves of a stage are collective,
  this is not). An interrupted write never leaves a truncated file that a rerun would take for a
  finished stage.
  """
  if jax.process_index() == 0:
    jsonio.write_json(path, obj)
