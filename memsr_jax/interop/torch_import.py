"""Import PyTorch SR weights into memsr_jax Flax params.

Supported state-dict layouts (the model's class picks the table; EDSR's layout is detected):
  * EDSR, official EDSR-PyTorch: head.0, body.{i}.body.{0,2}, body.{N}, tail.0.{2k}, tail.1;
    the sub_mean/add_mean MeanShift convs are not params here, but are checked against the
    model's rgb_mean (so a model trained with another mean is not silently mis-imported).
  * EDSR, BasicSR: conv_first, body.{i}.conv{1,2}, conv_after_body, upsample.{2k}, conv_last.
  * IMDN, official `Zheng222/IMDN` (DataParallel `module.` prefix stripped).
  * SwinIR, official `JingyunLiang/SwinIR`; the relative_position_index buffers are checked, the
    attn_mask buffers (tied to the training patch size) are skipped.
Checkpoints wrapped as {"params": …} / {"params_ema": …} (BasicSR, SwinIR) are unwrapped.
Conv weights OIHW → HWIO; Linear (out, in) → (in, out); LayerNorm weight → scale.
Any unknown key, missing key or shape mismatch raises a ValueError that names them.

torch is optional for the library: it is imported only inside `load_torch_weights`.

CLI (writes an Orbax model checkpoint): `python -m memsr_jax.import_weights --help`.
"""
import pathlib
from typing import Any, Callable, Iterator, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from memsr_jax import cli
from memsr_jax.models import registry
from memsr_jax.models.edsr import EDSR
from memsr_jax.models.imdn import IMDN
from memsr_jax.models.layers import upsample_stages
from memsr_jax.models.swinir import SwinIR
from memsr_jax.models.swinir import relative_position_index

# How a torch tensor becomes a Flax leaf.
_CONV, _DENSE, _VECTOR, _TABLE = "conv", "dense", "vector", "table"

# A layer: (torch prefix, flax path (tuple of module names), kind: "conv" | "dense" | "norm").
Layer = tuple[str, tuple[str, ...], str]
# A buffer to accept and check: torch key → check(array) returning an error string or None.
BufferChecks = dict[str, Callable[[np.ndarray], str | None]]


class TorchWeightsError(cli.UserError, ValueError):
  """A .pth file that cannot be read, or whose weights do not fit the model asked for."""


# --------------------------------------------------------------------------------------------
# Layer tables: every parameterised torch layer of an architecture and its Flax module path.
# --------------------------------------------------------------------------------------------

def _edsr_layers(model, fmt: str) -> tuple[list[Layer], BufferChecks]:
  if model.tail != "upsampler":
    raise ValueError(f"EDSR with tail={model.tail!r} has no PyTorch EDSR counterpart; only "
                     "tail='upsampler' models (edsr, edsr_baseline, edsr_mini) can be imported")
  n = model.n_resblocks
  n_up = len(upsample_stages(model.scale))
  if fmt == "official":
    layers = [("head.0", ("head",), "conv")]
    layers += [(f"body.{i}.body.{k}", (f"body_{i}", c), "conv")
               for i in range(n) for k, c in ((0, "conv1"), (2, "conv2"))]
    layers += [(f"body.{n}", ("body_conv",), "conv")]
    layers += [(f"tail.0.{2 * k}", (f"upsampler_{k}",), "conv") for k in range(n_up)]
    layers += [("tail.1", ("tail_conv",), "conv")]
    mean = np.asarray(model.rgb_mean, np.float64)
    buffers = {f"{name}.{p}": _mean_shift_check(name, p, sign, mean)
               for name, sign in (("sub_mean", -1.0), ("add_mean", 1.0))
               for p in ("weight", "bias")}
    return layers, buffers
  layers = [("conv_first", ("head",), "conv")]
  layers += [(f"body.{i}.{c}", (f"body_{i}", c), "conv")
             for i in range(n) for c in ("conv1", "conv2")]
  layers += [("conv_after_body", ("body_conv",), "conv")]
  layers += [(f"upsample.{2 * k}", (f"upsampler_{k}",), "conv") for k in range(n_up)]
  layers += [("conv_last", ("tail_conv",), "conv")]
  return layers, {}


def _mean_shift_check(name: str, part: str, sign: float, mean: np.ndarray):
  """EDSR-PyTorch MeanShift (rgb_std = 1): weight = I (1×1 conv), bias = sign·mean (0..255)."""
  def check(value: np.ndarray) -> str | None:
    if part == "weight":
      expected = np.eye(3).reshape(3, 3, 1, 1)
    else:
      expected = sign * mean
    if value.shape != expected.shape:
      return f"{name}.{part}: shape {tuple(value.shape)}, expected {expected.shape}"
    if not np.allclose(value, expected, atol=1e-3):
      return (f"{name}.{part} = {np.round(value.reshape(-1)[:9], 4).tolist()} does not match this "
              f"model's rgb_mean {tuple(mean.round(4))} (std 1); pass rgb_mean=… to match it")
    return None
  return check


def _imdn_layers(model) -> tuple[list[Layer], BufferChecks]:
  layers = [("fea_conv", ("fea_conv",), "conv")]
  for i in range(model.n_blocks):
    blk = f"IMDB{i + 1}"
    layers += [(f"{blk}.c{k}", (f"imdb_{i}", f"c{k}"), "conv") for k in range(1, 6)]
    layers += [(f"{blk}.cca.conv_du.0", (f"imdb_{i}", "cca", "down"), "conv"),
               (f"{blk}.cca.conv_du.2", (f"imdb_{i}", "cca", "up"), "conv")]
  layers += [("c.0", ("fuse",), "conv"), ("LR_conv", ("lr_conv",), "conv"),
             ("upsampler.0", ("upsampler",), "conv")]
  return layers, {}


def _swinir_layers(model) -> tuple[list[Layer], BufferChecks]:
  ws = model.window_size
  n_tok = ws * ws
  index = relative_position_index(ws)

  def check_index(key):
    def check(value):
      if value.shape != index.shape or not np.array_equal(value, index):
        return (f"{key}: relative position index {tuple(value.shape)} does not match window "
                f"size {ws} (expected {index.shape}); pass window_size=…")
      return None
    return check

  def check_mask(key):
    def check(value):
      # Recomputed for the actual input size at run time; only its window size is checked.
      if value.ndim != 3 or value.shape[1:] != (n_tok, n_tok):
        return f"{key}: attention mask {tuple(value.shape)} is not [nW, {n_tok}, {n_tok}]"
      return None
    return check

  layers = [("conv_first", ("conv_first",), "conv"),
            ("patch_embed.norm", ("patch_embed_norm",), "norm")]
  buffers: BufferChecks = {}
  for i, depth in enumerate(model.depths):
    for j in range(depth):
      t = f"layers.{i}.residual_group.blocks.{j}"
      f = (f"layers_{i}", f"blocks_{j}")
      layers += [(f"{t}.norm1", f + ("norm1",), "norm"),
                 (f"{t}.attn.qkv", f + ("attn", "qkv"), "dense"),
                 (f"{t}.attn.proj", f + ("attn", "proj"), "dense"),
                 (f"{t}.attn.relative_position_bias_table",
                  f + ("attn", "relative_position_bias_table"), "table"),
                 (f"{t}.norm2", f + ("norm2",), "norm"),
                 (f"{t}.mlp.fc1", f + ("mlp", "fc1"), "dense"),
                 (f"{t}.mlp.fc2", f + ("mlp", "fc2"), "dense")]
      buffers[f"{t}.attn.relative_position_index"] = check_index(
          f"{t}.attn.relative_position_index")
      if j % 2 == 1:
        buffers[f"{t}.attn_mask"] = check_mask(f"{t}.attn_mask")
    layers.append((f"layers.{i}.conv", (f"layers_{i}", "conv"), "conv"))
  layers += [("norm", ("norm",), "norm"), ("conv_after_body", ("conv_after_body",), "conv")]
  if model.upsampler == "pixelshuffle":
    layers.append(("conv_before_upsample.0", ("conv_before_upsample",), "conv"))
    layers += [(f"upsample.{2 * k}", (f"upsample_{k}",), "conv")
               for k in range(len(upsample_stages(model.scale)))]
    layers.append(("conv_last", ("conv_last",), "conv"))
  else:
    layers.append(("upsample.0", ("upsample",), "conv"))
  return layers, buffers


def _expand(layers: list[Layer]) -> Iterator[tuple[str, tuple[str, ...], str]]:
  """Layer table → (torch key, flax leaf path, leaf kind)."""
  for prefix, path, kind in layers:
    if kind == "table":
      yield prefix, path, _TABLE
    elif kind == "norm":
      yield f"{prefix}.weight", path + ("scale",), _VECTOR
      yield f"{prefix}.bias", path + ("bias",), _VECTOR
    else:
      yield f"{prefix}.weight", path + ("kernel",), _CONV if kind == "conv" else _DENSE
      yield f"{prefix}.bias", path + ("bias",), _VECTOR


def _torch_shape(flax_shape: tuple[int, ...], kind: str) -> tuple[int, ...]:
  if kind == _CONV:
    kh, kw, cin, cout = flax_shape
    return (cout, cin, kh, kw)
  if kind == _DENSE:
    return tuple(reversed(flax_shape))
  return tuple(flax_shape)


def _to_flax(value: np.ndarray, kind: str) -> np.ndarray:
  if kind == _CONV:
    return value.transpose(2, 3, 1, 0)
  if kind == _DENSE:
    return value.T
  return value


# --------------------------------------------------------------------------------------------
# Conversion.
# --------------------------------------------------------------------------------------------

def unwrap_state_dict(checkpoint: Mapping[str, Any], param_key: str | None = None
                      ) -> dict[str, np.ndarray]:
  """The flat {name: array} state dict inside a checkpoint, as NumPy float arrays.

  Unwraps BasicSR/SwinIR {"params"/"params_ema": …} (or `param_key`) and strips a `module.`
  prefix shared by every key (nn.DataParallel).
  """
  if not isinstance(checkpoint, Mapping):
    raise ValueError(f"expected a state dict (a mapping), got {type(checkpoint).__name__}")
  sd = checkpoint
  if param_key is not None:
    if param_key not in sd:
      raise ValueError(f"checkpoint has no {param_key!r} entry; top-level keys: "
                       f"{sorted(sd)[:10]}")
    sd = sd[param_key]
  else:
    for key in ("params", "params_ema"):
      if key in sd and isinstance(sd[key], Mapping):
        sd = sd[key]
        break
  if sd and all(k.startswith("module.") for k in sd):
    sd = {k[len("module."):]: v for k, v in sd.items()}
  out = {}
  for k, v in sd.items():
    if hasattr(v, "detach"):  # a torch.Tensor; no torch import needed to read it
      v = v.detach().cpu()
      v = v.float() if v.is_floating_point() else v
      v = v.numpy()
    out[k] = np.asarray(v)
  return out


def _layer_table(model, state_dict: Mapping[str, np.ndarray], model_name: str):
  if isinstance(model, IMDN):
    return _imdn_layers(model)
  if isinstance(model, SwinIR):
    return _swinir_layers(model)
  if isinstance(model, EDSR):
    if any(k.startswith("head.") for k in state_dict):
      return _edsr_layers(model, "official")
    if any(k.startswith("conv_first.") for k in state_dict):
      return _edsr_layers(model, "basicsr")
    raise ValueError(f"cannot tell the EDSR layout of this state dict (neither official "
                     f"'head.0.*' nor BasicSR 'conv_first.*' keys); first keys: "
                     f"{sorted(state_dict)[:8]}")
  raise ValueError(f"no PyTorch import for model {model_name!r} ({type(model).__name__}); "
                   "supported: EDSR family with the 3×3 upsampler, imdn, swinir*")


def _param_shapes(model) -> dict[tuple[str, ...], tuple[int, ...]]:
  dummy = jnp.zeros((1, 16, 16, 3), jnp.float32)
  shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), dummy))["params"]
  flat = jax.tree_util.tree_flatten_with_path(shapes)[0]
  return {tuple(p.key for p in path): tuple(leaf.shape) for path, leaf in flat}


def convert_state_dict(state_dict: Mapping[str, Any], model_name: str, scale: int,
                       param_key: str | None = None, **model_overrides):
  """Flax params for `registry.build_model(model_name, scale=scale, **model_overrides)`.

  `state_dict`: a PyTorch state dict (tensors or arrays), optionally wrapped (see module doc).
  Raises ValueError naming every unknown key, missing key and shape mismatch.
  """
  model = registry.build_model(model_name, scale=scale, **model_overrides)
  sd = unwrap_state_dict(state_dict, param_key)
  layers, buffers = _layer_table(model, sd, model_name)
  template = _param_shapes(model)
  expected = list(_expand(layers))
  not_in_model = sorted({path for _, path, _ in expected} - set(template))
  not_in_table = sorted(set(template) - {path for _, path, _ in expected})
  if not_in_model or not_in_table:  # a bug in the tables above, not in the user's input
    raise AssertionError(f"import table out of sync with {type(model).__name__}: "
                         f"{not_in_model} not in the model, {not_in_table} not in the table")

  problems = []
  expected_keys = {key for key, _, _ in expected}
  unknown = sorted(set(sd) - expected_keys - set(buffers))
  missing = sorted(expected_keys - set(sd))
  if unknown:
    problems.append(f"unknown key(s) {unknown}")
  if missing:
    problems.append(f"missing key(s) {missing}")
  flat = {}
  for key, path, kind in expected:
    if key not in sd:
      continue
    want = _torch_shape(template[path], kind)
    if tuple(sd[key].shape) != want:
      problems.append(f"shape mismatch for {key}: checkpoint {tuple(sd[key].shape)}, model "
                      f"expects {want}")
      continue
    flat[path] = jnp.asarray(_to_flax(sd[key], kind).astype(np.float32))
  for key, check in buffers.items():
    if key in sd:
      err = check(sd[key])
      if err:
        problems.append(err)
  if problems:
    kw = registry.model_kwargs(model_name, scale=scale, **model_overrides)
    raise ValueError(f"state dict does not fit model {model_name!r} {kw}: " + "; ".join(problems)
                     + ". Check the model name, --scale and size overrides "
                       "(e.g. n_feats, n_resblocks, embed_dim, depths).")
  params: dict = {}
  for path, value in flat.items():
    node = params
    for name in path[:-1]:
      node = node.setdefault(name, {})
    node[path[-1]] = value
  return params


def _require_torch():
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ModuleNotFoundError as e:
    raise ModuleNotFoundError(
        "PyTorch is needed only to read .pth files; install the CPU build with "
        "`pip install -r requirements-torch.txt` (or `pip install torch`).") from e
  return torch


def load_torch_weights(path: str | pathlib.Path, model_name: str, scale: int,
                       param_key: str | None = None, **model_overrides):
  """Reads a PyTorch .pth file and returns Flax params (see `convert_state_dict`)."""
  torch = _require_torch()
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"weights file not found: {path}")
  try:
    checkpoint = torch.load(str(path), map_location="cpu", weights_only=True)
  except Exception as e:  # pylint: disable=broad-except  (a text file raises KeyError: 101…)
    raise TorchWeightsError(f"cannot read {path} as PyTorch weights ({type(e).__name__}: "
                            f"{cli.one_line(e)[:200]}); give a .pth state dict") from e
  try:
    return convert_state_dict(checkpoint, model_name, scale, param_key=param_key,
                              **model_overrides)
  except ValueError as e:  # unknown model/hyperparameter, missing/extra keys, shapes
    raise TorchWeightsError(f"{path}: {e}") from e
