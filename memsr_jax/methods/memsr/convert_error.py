"""How exact MemSR's residual → plain conversion is in floating point (docs/MEMSR.md, step 1).

  python -m memsr_jax.methods.memsr.convert_error [--teachers memsr_teacher_s,memsr_teacher_m]
      [--scales 2,3,4] [--out benchmarks/results/memsr_convert_error.json]

For each teacher and scale, with trained-like weights (`trained_like`) and a random 0..255 input,
max |plain − residual| on the 0..255 output for: the literal plain net in float32 (its +C skip
copies cost low bits in every conv sum), the offset-folded plain net in float32
(`convert.fold_offsets`), and the literal plain net in float64. Everything runs at HIGHEST
precision, so the figures are the same on any backend up to summation order.
"""
import argparse
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np

from memsr_jax.methods.memsr import convert
from memsr_jax.models import registry
from memsr_jax.utils import cli
from memsr_jax.utils import console
from memsr_jax.utils import jsonio
from memsr_jax.utils import precision


def trained_like(params, seed: int = 0):
  """Random weights at trained-EDSR-like magnitudes: features stay within tens, SR within 0..255.

  Kernels keep their PyTorch-default init, scaled by 0.1 (head) and 0.2 (each block's conv2);
  vector biases N(0, 0.5²), 3×3 bias maps N(0, 0.2²) on every tap (so borders matter).
  """
  rng = np.random.default_rng(seed)

  def draw(path, a):
    names = [str(getattr(k, "key", k)) for k in path]
    if names[-1] == "bias":
      return rng.normal(0.0, 0.5, np.shape(a)).astype(np.float32)
    if names[-1] == "bias_map":
      return rng.normal(0.0, 0.2, np.shape(a)).astype(np.float32)
    gain = {"head": 0.1, "conv2": 0.2}.get(names[-2], 1.0)
    return (np.asarray(a) * gain).astype(np.float32)
  return jax.tree_util.tree_map_with_path(draw, params)


def measure(name: str, scale: int, hw=(24, 24), seed: int = 0, **model_kwargs) -> dict:
  """Max |plain − residual| of one teacher (see the module doc)."""
  model = registry.build_model(name, scale=scale, **model_kwargs)
  params = trained_like(registry.init_params(model, jax.random.key(seed)), seed=seed)
  x = np.random.default_rng(seed + 1).uniform(0, 255, (1, *hw, 3))
  spec = convert.teacher_spec(model)
  with precision.exact():
    ref = np.asarray(jax.jit(model.apply)({"params": params}, jnp.asarray(x, jnp.float32)))
    plain_model, plain_params = convert.convert(model, params)
    literal = np.asarray(jax.jit(plain_model.apply)({"params": plain_params},
                                                    jnp.asarray(x, jnp.float32)))
    folded_params = convert.fold_offsets(spec, convert.convert_params(spec, params))
    folded = np.asarray(jax.jit(lambda q, xx: convert.apply_folded(spec, q, xx))(
        folded_params, jnp.asarray(x, jnp.float32)))
    with jax.enable_x64(True):
      p64 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), params)
      ref64 = np.asarray(model.apply({"params": p64}, jnp.asarray(x, jnp.float64)))
      m64, q64 = convert.convert(model, p64, dtype=np.float64)
      out64 = np.asarray(m64.apply({"params": q64}, jnp.asarray(x, jnp.float64)))
  return {"teacher": name, "scale": scale, **{k: v for k, v in model_kwargs.items()},
          "input_hw": list(hw), "output_range": [float(ref.min()), float(ref.max())],
          "plain_layers": plain_model.n_layers,
          "max_abs_diff_fp32_literal": float(np.abs(literal - ref).max()),
          "max_abs_diff_fp32_folded": float(np.abs(folded - ref).max()),
          "max_abs_diff_fp64_literal": float(np.abs(out64 - ref64).max())}


def main(argv=None) -> None:
  ap = cli.ArgumentParser(prog="python -m memsr_jax.methods.memsr.convert_error",
                          description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--teachers", default="memsr_teacher_s,memsr_teacher_m",
                  help="comma-separated teacher presets to convert")
  ap.add_argument("--scales", default="2,3,4", help="comma-separated scales")
  ap.add_argument("--body_bias", default="vector,map",
                  help="teacher body-conv biases to measure: vector, map (official teachers)")
  ap.add_argument("--out", default="benchmarks/results/memsr_convert_error.json",
                  help="JSON file of the results")
  args = ap.parse_args(argv)
  rows = []
  for name in args.teachers.split(","):
    for scale in cli.parse_scales(args.scales):
      for body_bias in args.body_bias.split(","):
        row = measure(name, scale, body_bias=body_bias)
        rows.append(row)
        console.say(json.dumps(row))
  summary = {k: max(r[k] for r in rows) for k in ("max_abs_diff_fp32_literal",
                                                   "max_abs_diff_fp32_folded",
                                                   "max_abs_diff_fp64_literal")}
  out = {"command": "python -m memsr_jax.methods.memsr.convert_error " + " ".join(sys.argv[1:]),
         "device": str(jax.devices()[0].platform), "rows": rows, "max": summary}
  jsonio.write_json(args.out, out)
  console.result(json.dumps({"max": summary, "out": args.out}))


if __name__ == "__main__":
  sys.exit(cli.run(main))
