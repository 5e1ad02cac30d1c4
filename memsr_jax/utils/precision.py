"""The precision policy, in one place (docs/TRAINING.md, "Precision policy").

XLA runs float32 convolutions and matmuls at reduced precision by default on accelerators
(TF32 on NVIDIA GPUs since Ampere, bf16 passes on TPUs): ~3 significant digits instead of ~7.
That is fine for training, and wrong wherever the library promises exactness or parity:

  * exact paths — plain conversion and its checks, the SVD winning init, PyTorch-import parity,
    the evaluation protocol (eval.py), exact tiling/streaming in upscale, MSSR level maps — are
    traced under `exact()`: every conv and dot in them carries Precision.HIGHEST on every backend
    (tests/test_precision_policy.py lowers each one and checks);
  * training uses the backend's fast default, and `config.dtype="bfloat16"` adds mixed precision
    (bf16 compute; params, optimizer state, EMA, loss and metrics float32: `cast_floating`);
  * eval.py / upscale take `--precision highest|default|bfloat16` (default highest): `context`
    and `compute_dtype` turn the name into a tracing context and a dtype.

The context acts at trace time (jax.default_matmul_precision is part of jit's cache key), so it
must surround the first call or `.lower()` of a jitted function, not only its definition.
"""
import contextlib
import re

import jax
import jax.numpy as jnp

POLICIES = ("highest", "default", "bfloat16")
DTYPES = ("float32", "bfloat16")


def exact():
  """Context: every conv/dot traced inside runs at full float32 precision (HIGHEST)."""
  return jax.default_matmul_precision("highest")


def check_policy(policy: str) -> str:
  p = str(policy).strip().lower()
  if p not in POLICIES:
    raise ValueError(f"precision {policy!r}: expected one of {'|'.join(POLICIES)} (highest: full "
                     "float32, the protocol's numbers; default: the backend's fast matmuls, e.g. "
                     "TF32; bfloat16: bf16 compute)")
  return p


def context(policy: str):
  """The tracing context of a policy: HIGHEST for "highest", the backend default otherwise (an
  explicit "default" also overrides an enclosing `exact()`)."""
  p = check_policy(policy)
  return exact() if p == "highest" else jax.default_matmul_precision("default")


def compute_dtype(policy_or_dtype: str):
  """jnp dtype for a policy ("bfloat16" → bf16, else float32) or a config.dtype name."""
  name = str(policy_or_dtype).strip().lower()
  if name in ("bfloat16", "bf16"):
    return jnp.bfloat16
  if name in ("float32", "fp32", "highest", "default"):
    return jnp.float32
  raise ValueError(f"dtype {policy_or_dtype!r}: expected one of {'|'.join(DTYPES)}")


def cast_floating(tree, dtype):
  """Floating leaves cast to `dtype` (ints, bools such as level maps and masks untouched). Used
  inside the loss, so gradients flow back to the float32 master params as float32."""
  def cast(a):
    return a.astype(dtype) if jnp.issubdtype(jnp.result_type(a), jnp.floating) else a
  return jax.tree_util.tree_map(cast, tree)


def lowered_precisions(text: str) -> list[tuple[str, str]]:
  """[(op, precision)] of every stablehlo convolution / dot_general in lowered StableHLO text
  (`jax.jit(f).lower(...).as_text()`); "DEFAULT" when an op names none. For the policy guard."""
  out = []
  for line in text.splitlines():
    m = re.search(r"stablehlo\.(convolution|dot_general)\b", line)
    if not m:
      continue
    p = re.search(r"precision(?:_config)? = \[(?:#stablehlo<precision )?(\w+)", line)
    out.append((m.group(1), p.group(1) if p else "DEFAULT"))
  return out


@contextlib.contextmanager
def maybe(policy: str | None):
  """`context(policy)`, or nothing when policy is None (keeps the caller's setting)."""
  if policy is None:
    yield
  else:
    with context(policy):
      yield


def mixed_precision_loss(loss_fn, dtype):
  """Wraps `loss_fn(params, extras, batch, rng, step) -> (loss, metrics)` (a task's) to compute in
  `dtype` (bf16 mixed precision): floating params and extras (teachers) and the LR input are cast
  inside, so gradients reach the float32 master params as float32; HR targets stay float32, so a
  bf16 output meets them in float32; loss and floating metrics come back float32. float32/None:
  `loss_fn` itself."""
  if dtype is None or jnp.dtype(dtype) == jnp.float32:
    return loss_fn

  def wrapped(params, extras, batch, rng, step):
    batch = dict(batch, lr=batch["lr"].astype(dtype)) if "lr" in batch else batch
    loss, metrics = loss_fn(cast_floating(params, dtype), cast_floating(extras, dtype), batch,
                            rng, step)
    return jnp.asarray(loss, jnp.float32), cast_floating(metrics, jnp.float32)
  return wrapped
