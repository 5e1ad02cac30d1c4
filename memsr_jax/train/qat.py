"""Quantization-aware training of a plain net for ONNX Runtime int8 (`deploy.fake_quant`).

`run_qat` turns a trained plain net into its QAT checkpoint:
1. bias maps become vector biases (`to_vector_bias`: each map's sum, the interior value; the
   one-pixel border changes, and training adapts to it), since a 3×3 bias map exports as a graph of
   small ops whose every Add and Mul ONNX Runtime would quantize;
2. ranges are calibrated on `calib_batches` training batches (min / max of the float activations;
   the output range is the image range 0..255, so the output quantizer also clips);
3. `steps` Adam steps of L1 against HR on the simulator's output (straight-through rounding),
   cosine-decayed from `lr`; with `train_ranges` the ranges are parameters too (learning rate
   `lr · RANGE_LR`, their scale being ~100× the weights'), else frozen at the calibration;
4. the result is a model checkpoint (`save_model_checkpoint`) whose extra item `qat_ranges` holds
   the ranges: `python -m memsr_jax.export --quantize int8` pins them (deploy/qat_export.py).
"""
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax

from memsr_jax import checkpoints as ckpt_lib
from memsr_jax.deploy import fake_quant
from memsr_jax.deploy import qat_export
from memsr_jax.models import registry
from memsr_jax.train import data as data_lib
from memsr_jax.utils import console

RANGE_LR = 100.0


def to_vector_bias(kwargs: dict, params) -> tuple[dict, dict]:
  """(kwargs, params) of the same plain net with every 3×3 bias map replaced by its sum."""
  kwargs = dict(kwargs, bias_mode="vector")
  out = {}
  for name, p in params.items():
    p = dict(p)
    if "bias_map" in p:
      p["bias"] = np.asarray(p.pop("bias_map"), np.float32).sum(axis=(0, 1, 2))
    out[name] = {k: np.asarray(v, np.float32) for k, v in p.items()}
  return kwargs, out


def batches(config, batch_size: int):
  """The training stream of `config.data` (dicts of uint8 "lr" / "hr"), closed by the caller."""
  return data_lib.make_source(config, local_batch_size=batch_size, process_index=0,
                              process_count=1)


def train(model, params, ranges, source, *, steps: int, lr: float, train_ranges: bool,
          log_every: int = 50):
  """(params, ranges, [(step, L1)]) after `steps` QAT steps on batches from `source`."""
  trainable = {"params": params, "ranges": {k: jnp.asarray(v) for k, v in ranges.items()
                                            if k != "output"}}
  labels = {"params": jax.tree_util.tree_map(lambda _: "w", params),
            "ranges": {k: ("r" if train_ranges else "frozen") for k in trainable["ranges"]}}
  sched = optax.cosine_decay_schedule(lr, max(steps, 1))
  opt = optax.multi_transform(
      {"w": optax.adam(sched), "r": optax.adam(lambda s: sched(s) * RANGE_LR),
       "frozen": optax.set_to_zero()}, labels)
  out_range = jnp.asarray(ranges["output"])

  def loss_fn(t, lr_img, hr):
    r = {**t["ranges"], "output": out_range}
    r = {k: (jnp.minimum(v[0], 0.0) if k.startswith("conv_") and model.relu_flags()[
        int(k.split("_")[1])] else v[0], v[1]) for k, v in r.items()}
    return jnp.mean(jnp.abs(fake_quant.forward(model, t["params"], lr_img, r) - hr))

  @jax.jit
  def step(t, state, lr_img, hr):
    loss, g = jax.value_and_grad(loss_fn)(t, lr_img, hr)
    updates, state = opt.update(g, state, t)
    return optax.apply_updates(t, updates), state, loss

  state, log = opt.init(trainable), []
  with jax.default_matmul_precision("highest"):
    for i in range(steps):
      b = next(source)
      trainable, state, loss = step(trainable, state, jnp.asarray(b["lr"], jnp.float32),
                                    jnp.asarray(b["hr"], jnp.float32))
      if (i + 1) % log_every == 0 or i + 1 == steps:
        log.append((i + 1, float(loss)))
        console.say(f"[qat] step {i + 1}/{steps} L1 {float(loss):.3f}")
  ranges = {k: np.asarray(v, np.float32) for k, v in trainable["ranges"].items()}
  ranges["output"] = np.asarray(out_range, np.float32)
  return jax.tree_util.tree_map(np.asarray, trainable["params"]), ranges, log


def run_qat(config, out_dir, model_name: str, kwargs: dict, params, *, steps: int, lr: float,
            train_ranges: bool = True, calib_batches: int = 4, batch_size: int = 8,
            meta: dict | None = None) -> pathlib.Path:
  """Vector biases, calibration, `steps` QAT steps → the checkpoint `out_dir` (see the module
  docstring); `config` names the training data (config.data, config.scale, config.seed)."""
  if model_name != "plain":
    raise fake_quant.UnsupportedModel(f"quantization-aware training covers plain nets; "
                                      f"got {model_name!r}")
  kwargs, params = to_vector_bias(kwargs, params)
  model = registry.build_model(model_name, **kwargs)
  fake_quant.check_model(model)
  source = batches(config, batch_size)
  try:
    calib = [np.asarray(next(source)["lr"], np.float32) for _ in range(calib_batches)]
    ranges = fake_quant.calibrate(model, params, calib)
    params, ranges, log = train(model, params, ranges, source, steps=steps, lr=lr,
                                train_ranges=train_ranges)
  finally:
    if hasattr(source, "close"):
      source.close()
  info = {"qat": {"steps": steps, "lr": lr, "train_ranges": train_ranges,
                  "calib_batches": calib_batches, "batch_size": batch_size,
                  "l1": log, "ranges": {k: v.tolist() for k, v in ranges.items()}}}
  return ckpt_lib.save_model_checkpoint(out_dir, model_name, kwargs, params,
                                        {**(meta or {}), **info},
                                        extra_items={qat_export.RANGES_ITEM: ranges})
