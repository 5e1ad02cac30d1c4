"""Per-method evaluation hooks: what a training method adds to eval.py, so eval.py only assembles.

A hook (`EvalHook`) has two optional parts, both given the eval config (configs/eval.py):
  select_params(params, meta, config) -> params
      the network to evaluate, e.g. one level of an MSSR checkpoint; returns `params` itself when
      the config asks for nothing of this method (it may add notes to `meta`).
  sweep(config, run) -> result | None
      an evaluation of its own made of calls to `run(config) -> summary` (eval.py's evaluation of
      one network), e.g. every MSSR level; None when the config does not ask for it.
A method registers its hook in its own module with `register(name, hook)`; the modules in
`HOOK_MODULES` are imported on first use.
"""
import dataclasses
import importlib
from typing import Any, Callable

PyTree = Any
Config = Any  # an ml_collections.ConfigDict shaped like configs/eval.py

# Imported on first use, by name: method modules import memsr_jax.evaluation themselves.
HOOK_MODULES = ("memsr_jax.methods.mssr.evaluate",)


@dataclasses.dataclass(frozen=True)
class EvalHook:
  select_params: Callable[[PyTree, dict, Config], PyTree] | None = None
  sweep: Callable[[Config, Callable[[Config], dict]], Any] | None = None


_HOOKS: dict[str, EvalHook] = {}


def register(name: str, hook: EvalHook) -> None:
  _HOOKS[name] = hook


def registered() -> dict[str, EvalHook]:
  """Every registered hook by name (importing the `HOOK_MODULES` registers theirs)."""
  for module in HOOK_MODULES:
    importlib.import_module(module)
  return dict(_HOOKS)


def select_params(params: PyTree, meta: dict, config: Config) -> PyTree:
  """`params` passed through every hook's `select_params` (unchanged when none applies)."""
  for hook in registered().values():
    if hook.select_params is not None:
      params = hook.select_params(params, meta, config)
  return params


def sweep(config: Config, run: Callable[[Config], dict]) -> Any:
  """The first hook sweep the config asks for (its result), or None: evaluate one network."""
  for hook in registered().values():
    if hook.sweep is not None:
      result = hook.sweep(config, run)
      if result is not None:
        return result
  return None
