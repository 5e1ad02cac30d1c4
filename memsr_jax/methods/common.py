"""Scaffolding every method's stages share: per-stage configs and the small JSON files they leave.

A multi-stage method trains each stage with the engine on a copy of the run's config with a few
keys changed (`stage_config`), and records what a stage decided in a JSON file that a rerun reads
back instead of recomputing it (`jsonio.write_json` on process 0: `is_main`); `say` is a stage's
status line.
"""
import copy
from typing import Any, Mapping

import jax
import ml_collections

from memsr_jax.utils import console


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


def is_main() -> bool:
  """Whether this is process 0: every process computes the same result, one writes it
  (`jsonio.write_json`, atomic) and speaks (`say`). The Orbax saves of a stage are collective,
  these are not."""
  return jax.process_index() == 0


def say(message: str) -> None:
  """A stage's status line on stderr (`console.say`), from process 0 only."""
  if is_main():
    console.say(message)
