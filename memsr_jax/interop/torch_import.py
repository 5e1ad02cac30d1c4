"""Import PyTorch SR weights into memsr_jax Flax params.

Supported state-dict layouts (the model's class picks the table; EDSR's layout is detected):
  * EDSR, official EDSR-PyTorch: head.0, body.{i}.body.{0,2}, body.{N}, tail.0.{2k}, tail.1;
    the sub_mean/add_mean MeanShift convs are not params here, but are checked against the
    model's rgb_mean (so a model trained with another mean is not silently mis-imported).
  * EDSR, BasicSR: conv_first, body.{i}.conv{1,2}, conv_after_body, upsample.{2k}, conv_last.
  * EDSR, official MemSR teachers (wukailu/MemSR `EDSR_layerwise`, PyTorch Lightning .ckpt):
    sequential_models.0 = head (sub_mean, conv), sequential_models.1 = body (blocks
    .sequential_models.{i}.sequential_models.{0,1}.conv and the body conv .sequential_models.{N}
    .conv), sequential_models.2 = tail (conv: 1×1 to 3·s², or the EDSR upsampler; add_mean). Body
    convs read a constant ones channel 0 ([F, F+1, 3, 3], no bias), imported as a 3×3 bias map:
    the model must be built with body_bias="map" (and res_scale 1: that model has no scaling).
  * IMDN, official `Zheng222/IMDN` (DataParallel `module.` prefix stripped).
  * SwinIR, official `JingyunLiang/SwinIR`; the relative_position_index buffers are checked, the
    attn_mask buffers (tied to the training patch size) are skipped.
Checkpoints wrapped as {"params": …} / {"params_ema": …} (BasicSR, SwinIR) or {"state_dict": …}
(Lightning; a `model.` prefix shared by every key is stripped) are unwrapped.
Conv weights OIHW → HWIO; Linear (out, in) → (in, out); LayerNorm weight → scale.
Any unknown key, missing key or shape mismatch raises a ValueError that names them.

Hyperparameters the weights cannot show (res_scale above all: a wrong one imports cleanly and gives
wrong outputs) are checked wherever the release records them: a Lightning checkpoint's
`hyper_parameters`, or a BasicSR options file (`network_g`, passed as `options`). A recorded value
that differs from the model's is refused, naming the `--set` that fixes it.

torch is optional for the library: it is imported only inside `load_torch_weights`.

CLI (writes an Orbax model checkpoint): `python -m memsr_jax.import_weights --help`.
"""
import pathlib
import pickle
from typing import Any, Callable, Iterator, Mapping
import warnings

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
# A conv whose input channel 0 is a constant ones channel (MemSR's ConvLayer, no bias): one torch
# weight [O, 1 + I, k, k] gives the kernel (channels 1:) and the 3×3 bias map (channel 0).
_ONES_KERNEL, _ONES_MAP = "ones_kernel", "ones_map"

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
  if fmt == "memsr":
    return _memsr_teacher_layers(model)
  if model.body_bias != "vector":
    raise ValueError(f"EDSR with body_bias={model.body_bias!r}: the {fmt} EDSR layout has vector "
                     "biases; leave body_bias at 'vector'")
  if model.tail != "upsampler":
    raise ValueError(f"EDSR with tail={model.tail!r} has no PyTorch EDSR counterpart; only "
                     "tail='upsampler' models (edsr, edsr_baseline, edsr_mini) can be imported "
                     "from the EDSR-PyTorch / BasicSR layouts")
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


def _memsr_teacher_layers(model) -> tuple[list[Layer], BufferChecks]:
  """wukailu/MemSR EDSR_layerwise: head, body (blocks + body conv), tail, as sequential_models.*"""
  if model.body_bias != "map":
    raise ValueError("the official MemSR teacher's body convs carry 3×3 bias maps (a constant "
                     "ones input channel); build the model with body_bias='map' "
                     "(--set body_bias=map)")
  if model.res_scale != 1.0:
    raise ValueError(f"the official MemSR teacher has no residual scaling, but the model has "
                     f"res_scale={model.res_scale}; pass --set res_scale=1.0")
  seq, n = "sequential_models", model.n_resblocks
  body = f"{seq}.1.{seq}"
  layers = [(f"{seq}.0.conv", ("head",), "conv")]
  layers += [(f"{body}.{i}.{seq}.{k}.conv", (f"body_{i}", c), "ones_conv")
             for i in range(n) for k, c in ((0, "conv1"), (1, "conv2"))]
  layers += [(f"{body}.{n}.conv", ("body_conv",), "ones_conv")]
  if model.tail == "conv1x1":  # EDSREasyTail (simple_tail=True): 1×1 conv to 3·s², shuffle
    layers += [(f"{seq}.2.conv", ("tail",), "conv")]
  else:  # EDSRTail: EDSR's upsampler and last conv
    n_up = len(upsample_stages(model.scale))
    layers += [(f"{seq}.2.tail.0.{2 * k}", (f"upsampler_{k}",), "conv") for k in range(n_up)]
    layers += [(f"{seq}.2.tail.1", ("tail_conv",), "conv")]
  mean = np.asarray(model.rgb_mean, np.float64)
  buffers = {f"{seq}.{i}.{name}.{p}": _mean_shift_check(name, p, sign, mean)
             for i, name, sign in ((0, "sub_mean", -1.0), (2, "add_mean", 1.0))
             for p in ("weight", "bias")}
  return layers, buffers


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
    elif kind == "ones_conv":
      yield f"{prefix}.weight", path + ("kernel",), _ONES_KERNEL
      yield f"{prefix}.weight", path + ("bias_map",), _ONES_MAP
    else:
      yield f"{prefix}.weight", path + ("kernel",), _CONV if kind == "conv" else _DENSE
      yield f"{prefix}.bias", path + ("bias",), _VECTOR


def _torch_shape(template, path: tuple[str, ...], kind: str) -> tuple[int, ...]:
  flax_shape = template[path]
  if kind in (_ONES_KERNEL, _ONES_MAP):  # both read the [O, 1 + I, k, k] weight
    kh, kw, cin, cout = template[path[:-1] + ("kernel",)]
    return (cout, 1 + cin, kh, kw)
  if kind == _CONV:
    kh, kw, cin, cout = flax_shape
    return (cout, cin, kh, kw)
  if kind == _DENSE:
    return tuple(reversed(flax_shape))
  return tuple(flax_shape)


def _to_flax(value: np.ndarray, kind: str) -> np.ndarray:
  if kind == _ONES_KERNEL:
    return value[:, 1:].transpose(2, 3, 1, 0)
  if kind == _ONES_MAP:
    return value[:, :1].transpose(2, 3, 1, 0)
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

  Unwraps BasicSR/SwinIR {"params"/"params_ema": …}, Lightning {"state_dict": …} (or
  `param_key`) and strips a `module.` (nn.DataParallel) or `model.` (a LightningModule's network
  attribute) prefix shared by every key.
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
    for key in ("params", "params_ema", "state_dict"):
      if key in sd and isinstance(sd[key], Mapping):
        sd = sd[key]
        break
  for prefix in ("module.", "model."):
    if sd and all(isinstance(k, str) and k.startswith(prefix) for k in sd):
      sd = {k[len(prefix):]: v for k, v in sd.items()}
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
    if any(k.startswith("sequential_models.") for k in state_dict):
      return _edsr_layers(model, "memsr")
    raise ValueError(f"cannot tell the EDSR layout of this state dict (neither official "
                     f"'head.0.*', BasicSR 'conv_first.*' nor MemSR 'sequential_models.*' keys); "
                     f"first keys: {sorted(state_dict)[:8]}")
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
    want = _torch_shape(template, path, kind)
    if tuple(sd[key].shape) != want:
      problems.append(f"shape mismatch for {key}: checkpoint {tuple(sd[key].shape)}, model "
                      f"expects {want}")
      continue
    flat[path] = jnp.asarray(_to_flax(sd[key], kind).astype(np.float32))
  problems = list(dict.fromkeys(problems))  # a ones-channel weight feeds two leaves
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


# --------------------------------------------------------------------------------------------
# Hyperparameters recorded with the weights.
# --------------------------------------------------------------------------------------------

# Our model field → the names the releases record it under (EDSR-PyTorch / MemSR Lightning
# hparams, BasicSR network_g, SwinIR).
_HPARAM_NAMES = {
    EDSR: {"n_feats": ("n_feats", "nf", "num_feat"), "n_resblocks": ("n_resblocks", "num_block"),
           "res_scale": ("res_scale",), "scale": ("scale", "upscale"),
           "tail": ("simple_tail",), "range": ("rgb_range", "img_range")},
    SwinIR: {"scale": ("upscale", "scale"), "embed_dim": ("embed_dim",), "depths": ("depths",),
             "num_heads": ("num_heads",), "window_size": ("window_size",),
             "mlp_ratio": ("mlp_ratio",), "upsampler": ("upsampler",),
             "img_range": ("img_range",)},
    IMDN: {"scale": ("upscale", "scale")},
}


def recorded_hparams(checkpoint: Any, options: Mapping | None = None
                     ) -> list[tuple[str, Mapping]]:
  """Where the architecture is recorded, most specific first: a BasicSR options dict's
  `network_g`, a Lightning checkpoint's `hyper_parameters.backbone` and `hyper_parameters`."""
  scopes = []
  if options is not None:
    net = options.get("network_g") if isinstance(options, Mapping) else None
    if not isinstance(net, Mapping):
      raise ValueError("the options have no 'network_g' section (a BasicSR options file names "
                       "the network there)")
    scopes.append(("options network_g", net))
  hp = checkpoint.get("hyper_parameters") if isinstance(checkpoint, Mapping) else None
  if isinstance(hp, Mapping):
    if isinstance(hp.get("backbone"), Mapping):
      scopes.append(("hyper_parameters.backbone", hp["backbone"]))
    scopes.append(("hyper_parameters", hp))
  return scopes


def _same(a, b) -> bool:
  if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
    a, b = np.ravel(np.asarray(a, dtype=object)), np.ravel(np.asarray(b, dtype=object))
    return a.shape == b.shape and all(_same(x, y) for x, y in zip(a, b))
  if isinstance(a, (bool, str)) or isinstance(b, (bool, str)):
    return a == b
  try:
    return bool(np.isclose(float(a), float(b), rtol=1e-6, atol=0.0))
  except (TypeError, ValueError):
    return a == b


def hparam_problems(model, scopes: list[tuple[str, Mapping]]) -> list[str]:
  """Recorded hyperparameters that contradict `model`, each with the fix."""
  problems = []
  for field, names in _HPARAM_NAMES.get(type(model), {}).items():
    hit = next(((where, n, scope[n]) for where, scope in scopes for n in names if n in scope),
               None)
    if hit is None:
      continue
    where, name, value = hit
    said = f"{where} has {name}={value!r}"
    if field == "range":  # EDSR works on 0..255: the mean shift and input scale assume it
      if not _same(value, 255):
        problems.append(f"{said}, but EDSR-family models here work on 0..255 (range 255)")
    elif field == "tail":
      want = "conv1x1" if value else "upsampler"
      if model.tail != want:
        problems.append(f"{said}, but the model has tail={model.tail!r}: pass --set tail={want}")
    elif not _same(value, getattr(model, field)):
      fix = f"--scale {value}" if field == "scale" else f"--set {field}={value}"
      problems.append(f"{said}, but the model has {field}={getattr(model, field)!r}: pass {fix}")
  if scopes and scopes[0][0] == "options network_g":
    kind = str(scopes[0][1].get("type", ""))
    if kind and not kind.lower().startswith(type(model).__name__.lower()):
      problems.append(f"options network_g has type={kind!r}, but the model is "
                      f"{type(model).__name__}")
  return problems


def read_options(path: str | pathlib.Path) -> dict:
  """A BasicSR options file (YAML, e.g. options/test/EDSR/test_EDSR_Mx2.yml) as a dict."""
  import yaml  # pylint: disable=import-outside-toplevel  (PyYAML ships with ml_collections)
  try:
    with open(path, encoding="utf-8") as f:
      opts = yaml.safe_load(f)
  except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
    raise TorchWeightsError(f"cannot read options file {path}: {cli.one_line(e)[:200]}") from e
  if not isinstance(opts, dict):
    raise TorchWeightsError(f"options file {path} is not a YAML mapping")
  return opts


# --------------------------------------------------------------------------------------------
# Reading .pth / .ckpt files.
# --------------------------------------------------------------------------------------------

class _Opaque(dict):
  """Stands in for a pickled object that is neither a tensor nor a plain container (a Lightning
  callback, an LR scheduler's bound method…): built without importing or running its class."""

  def __init__(self, *args, **kwargs):  # pylint: disable=unused-argument
    super().__init__()

  def __setstate__(self, state):
    self.pickled_state = state


def _restricted_pickle(torch):
  """A pickle module for torch.load that resolves only tensors, storages and plain containers;
  every other global becomes `_Opaque`, so no code named by the file ever runs."""
  allowed = {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor"),
             ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter"),
             ("torch._utils", "_rebuild_parameter_with_state"),
             ("torch._tensor", "_rebuild_from_type_v2"), ("torch", "Size"), ("torch", "Tensor"),
             ("torch", "device"), ("torch.nn.parameter", "Parameter")}

  class Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
      if (module, name) in allowed:
        return super().find_class(module, name)
      if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
        return getattr(torch, name)
      return _Opaque

  def load(f, **kwargs):
    return Unpickler(f, **kwargs).load()

  return type("restricted_pickle", (), {"Unpickler": Unpickler, "load": staticmethod(load),
                                       "__name__": "restricted_pickle"})


def read_checkpoint(path: str | pathlib.Path) -> Any:
  """torch.load without running code from the file: weights_only first, and for checkpoints that
  pickle other objects beside the weights (PyTorch Lightning's callbacks and LR schedulers) a
  restricted unpickler that keeps tensors and containers and stubs out everything else."""
  torch = _require_torch()
  try:
    return torch.load(str(path), map_location="cpu", weights_only=True)
  except pickle.UnpicklingError as first:
    try:
      with warnings.catch_warnings():  # torch warns about legacy pickles: noise for a user
        warnings.simplefilter("ignore")
        return torch.load(str(path), map_location="cpu", weights_only=False,
                          pickle_module=_restricted_pickle(torch))
    except Exception:  # pylint: disable=broad-except  (report the weights_only error)
      raise first from None


def _why_unreadable(error: Exception) -> str:
  """Our own words for why torch.load failed. torch's messages are not passed on: for a file that
  pickles other objects they advise loading it with weights_only=False, which would run code
  named by the file."""
  if isinstance(error, EOFError):
    return "the file is empty or cut short"
  if isinstance(error, pickle.UnpicklingError):
    return "it pickles objects other than tensors and plain containers"
  if isinstance(error, RuntimeError):  # torch's zip reader
    return "a damaged archive, or one torch.save did not write"
  return "not in torch.save's format"


def _require_torch():
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ModuleNotFoundError as e:
    raise ModuleNotFoundError(
        "PyTorch is needed only to read .pth files; install the CPU build with "
        "`pip install -r requirements-torch.txt` (or `pip install torch`).") from e
  return torch


def load_torch_weights(path: str | pathlib.Path, model_name: str, scale: int,
                       param_key: str | None = None, options: Mapping | None = None,
                       check_hparams: bool = True, **model_overrides):
  """Reads a PyTorch .pth / Lightning .ckpt file and returns Flax params (see
  `convert_state_dict`). Hyperparameters recorded in the checkpoint or in `options` (a BasicSR
  options dict, `read_options`) must agree with the model unless `check_hparams=False`."""
  _require_torch()
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"weights file not found: {path}")
  try:
    checkpoint = read_checkpoint(path)
  except Exception as e:  # pylint: disable=broad-except  (a text file raises KeyError: 101…)
    raise TorchWeightsError(f"cannot read {path} as PyTorch weights: it is not a weights file "
                            f"({_why_unreadable(e)}); give a .pth/.ckpt state dict saved by "
                            "torch.save") from None
  try:
    if check_hparams:
      model = registry.build_model(model_name, scale=scale, **model_overrides)
      problems = hparam_problems(model, recorded_hparams(checkpoint, options))
      if problems:
        raise ValueError("the recorded hyperparameters do not match the model: "
                         + "; ".join(problems) + " (--no_hparam_check skips this check)")
    return convert_state_dict(checkpoint, model_name, scale, param_key=param_key,
                              **model_overrides)
  except ValueError as e:  # unknown model/hyperparameter, missing/extra keys, shapes
    raise TorchWeightsError(f"{path}: {e}") from e
