"""Model registry: a config names a preset and overrides its hyperparameters.

Every preset of the zoo is registered here, in one table; model modules only define modules.
"""
import dataclasses
import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from memsr_jax.models import hparams
from memsr_jax.models.edsr import EDSR
from memsr_jax.models.imdn import IMDN
from memsr_jax.models.plain import PlainNet
from memsr_jax.models.swinir import SwinIR
from memsr_jax.utils import cli

# name -> (constructor, default kwargs)
MODEL_PRESETS: dict[str, tuple[Callable[..., nn.Module], dict[str, Any]]] = {}


def register(name: str, cls: Callable[..., nn.Module], **defaults) -> None:
  MODEL_PRESETS[name] = (cls, dict(defaults))


def memsr_plain_relu(n_blocks: int) -> tuple:
  """Activation pattern of a converted MemSR teacher: head (id), [ReLU, id] × N, body conv (id)."""
  return tuple([False] + [True, False] * n_blocks + [False])


def plain_widths(width: int, n_layers: int) -> tuple:
  return tuple([3] + [width] * n_layers)


register("edsr", EDSR, n_feats=256, n_resblocks=32, res_scale=0.1, tail="upsampler")
register("edsr_baseline", EDSR, n_feats=64, n_resblocks=16, res_scale=1.0, tail="upsampler")
# EDSRmini as the compression paper released it (train and test configs): residual scale 2.
register("edsr_mini", EDSR, n_feats=16, n_resblocks=8, res_scale=2.0, tail="upsampler")
register("memsr_teacher_s", EDSR, n_feats=64, n_resblocks=8, tail="conv1x1")
register("memsr_teacher_m", EDSR, n_feats=64, n_resblocks=16, tail="conv1x1")
register("memsr_teacher_l", EDSR, n_feats=100, n_resblocks=16, tail="conv1x1")
# MemSR students: the teacher's plain layout (2N+2 3×3 convs, alternating ReLU) at a fixed width.
register("plain_s", PlainNet, widths=plain_widths(64, 18), relu=memsr_plain_relu(8), tail_kernel=1)
register("plain_m", PlainNet, widths=plain_widths(64, 34), relu=memsr_plain_relu(16), tail_kernel=1)
register("plain_l", PlainNet, widths=plain_widths(100, 34), relu=memsr_plain_relu(16),
         tail_kernel=1)
# A generic plain net (e.g. the 35-layer 64-wide net of the throughput benchmark).
register("plain", PlainNet, widths=plain_widths(64, 8), relu=None, tail_kernel=3)
register("imdn", IMDN, n_feats=64, n_blocks=6)
register("swinir", SwinIR, embed_dim=180, depths=(6,) * 6, num_heads=(6,) * 6,
         window_size=8, mlp_ratio=2.0, upsampler="pixelshuffle")
# SwinIR-S, the lightweight release, and SwinIRmini, the compression paper's student.
register("swinir_s", SwinIR, embed_dim=60, depths=(6, 6, 6, 6), num_heads=(6, 6, 6, 6),
         window_size=8, mlp_ratio=2.0, upsampler="pixelshuffledirect")
register("swinir_mini", SwinIR, embed_dim=24, depths=(4, 4, 4), num_heads=(6, 6, 6),
         window_size=8, mlp_ratio=2.0, upsampler="pixelshuffledirect")


def model_kwargs(name: str, **overrides) -> dict[str, Any]:
  """The full constructor kwargs of a preset with overrides applied (what checkpoints record)."""
  if name not in MODEL_PRESETS:
    raise cli.UsageError(f"unknown model {name!r}; known models: "
                         f"{', '.join(sorted(MODEL_PRESETS))}")
  cls, defaults = MODEL_PRESETS[name]
  fields = {f.name for f in dataclasses.fields(cls)} - {"parent", "name"}
  unknown = sorted(set(overrides) - fields)
  if unknown:
    raise cli.UsageError(f"model {name!r} has no hyperparameter(s) {unknown}; "
                         f"valid: {sorted(fields)}")
  field_defaults = {f.name: f.default for f in dataclasses.fields(cls)
                    if f.default is not dataclasses.MISSING}
  hparams.check_values(name, overrides, {**field_defaults, **defaults})
  kw = dict(defaults)
  kw.update(overrides)
  return kw


def build_model(name: str, **overrides) -> nn.Module:
  kw = model_kwargs(name, **overrides)
  cls, _ = MODEL_PRESETS[name]
  for k, v in list(kw.items()):  # ConfigDict / JSON give lists where modules want tuples
    if isinstance(v, list):
      kw[k] = tuple(v)
  return cls(**kw)


def init_params(model: nn.Module, rng: jax.Array, lr_shape=(1, 16, 16, 3)):
  """Initial params for a model, from a dummy LR batch of `lr_shape`."""
  rng = rng if isinstance(rng, jax.Array) else jnp.asarray(rng)
  key = (model, tuple(lr_shape))
  try:
    hash(key)
  except TypeError:  # a model with unhashable fields: no cache
    return _jitted_init(*key)(rng)
  if isinstance(rng, jax.core.Tracer):  # inside eval_shape/jit: trace through the jitted init
    return _cached_jitted_init(*key)(rng)
  return _compiled_init(*key, rng.shape, rng.dtype)(rng)


def random_params(model: nn.Module, seed: int = 0, lr_shape=(1, 16, 16, 3),
                  bias_std: float = 0.5):
  """Random params with the shapes of `model.init`, drawn in NumPy (no XLA compile, whose memory
  would count against a small budget): kernels N(0, 1/fan_in) (LeCun), biases N(0, bias_std²)
  (non-zero on purpose, so border handling matters), other leaves N(0, 0.02²)."""
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(lr_shape)))["params"]
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    name = str(getattr(path[-1], "key", path[-1]))
    if name == "kernel" and len(leaf.shape) >= 2:
      fan_in = int(np.prod(leaf.shape[:-1]))
      return (rng.standard_normal(leaf.shape) / np.sqrt(fan_in)).astype(leaf.dtype)
    if name.startswith("bias"):
      return (bias_std * rng.standard_normal(leaf.shape)).astype(leaf.dtype)
    if name == "scale":  # normalisation scales
      return np.ones(leaf.shape, leaf.dtype)
    return (0.02 * rng.standard_normal(leaf.shape)).astype(leaf.dtype)

  return jax.tree_util.tree_map_with_path(draw, shapes)


def _jitted_init(model: nn.Module, lr_shape: tuple):
  # jit: an un-jitted init of attention models (SwinIR) runs op by op and takes tens of seconds.
  return jax.jit(lambda r: model.init(r, jnp.zeros(lr_shape, jnp.float32))["params"])


_cached_jitted_init = functools.lru_cache(maxsize=32)(_jitted_init)


@functools.lru_cache(maxsize=32)
def _compiled_init(model: nn.Module, lr_shape: tuple, rng_shape: tuple, rng_dtype):
  """The compiled init of `model`, reused for every rng of this shape/dtype.

  On CPU it is compiled without LLVM optimization, for every caller (a training run's start, the
  tools, the tests): the random-number kernels take most of the compile time and run only once,
  so optimizing them costs more than it saves (compile + run on a loaded 2-core CPU: EDSR-baseline
  10.3 s instead of 16.1 s, IMDN 14.5 s instead of 41.7 s, SwinIR-S 43.7 s instead of 60.3 s).
  """
  lowered = _cached_jitted_init(model, lr_shape).lower(jax.ShapeDtypeStruct(rng_shape, rng_dtype))
  if jax.default_backend() == "cpu":
    return lowered.compile(compiler_options={"xla_backend_optimization_level": 0})
  return lowered.compile()

