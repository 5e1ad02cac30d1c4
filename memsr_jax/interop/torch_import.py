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

torch is optional for the library: it is imported only inside `load_torch_weights`. The layer
tables are torch_layers.py; reading files without running their code is torch_files.py.

CLI (writes an Orbax model checkpoint): `python -m memsr_jax.import_weights --help`.
"""
import pathlib
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from memsr_jax.interop import option_files
from memsr_jax.interop import torch_files
from memsr_jax.interop import torch_layers
from memsr_jax.models import registry
from memsr_jax.models.edsr import EDSR
from memsr_jax.models.imdn import IMDN
from memsr_jax.models.swinir import SwinIR
from memsr_jax.utils import cli


class TorchWeightsError(cli.UserError, ValueError):
  """A .pth file that cannot be read, or whose weights do not fit the model asked for."""


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
    return torch_layers.imdn_layers(model)
  if isinstance(model, SwinIR):
    return torch_layers.swinir_layers(model)
  if isinstance(model, EDSR):
    if any(k.startswith("head.") for k in state_dict):
      return torch_layers.edsr_layers(model, "official")
    if any(k.startswith("conv_first.") for k in state_dict):
      return torch_layers.edsr_layers(model, "basicsr")
    if any(k.startswith("sequential_models.") for k in state_dict):
      return torch_layers.edsr_layers(model, "memsr")
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
  expected = list(torch_layers.expand(layers))
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
    want = torch_layers.torch_shape(template, path, kind)
    if tuple(sd[key].shape) != want:
      problems.append(f"shape mismatch for {key}: checkpoint {tuple(sd[key].shape)}, model "
                      f"expects {want}")
      continue
    flat[path] = jnp.asarray(torch_layers.to_flax(sd[key], kind).astype(np.float32))
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
  import yaml  # PyYAML ships with ml_collections; only release option files need it
  try:
    with open(path, encoding="utf-8") as f:
      opts = option_files.parse_yaml(f.read())
  except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
    raise TorchWeightsError(f"cannot read options file {path}: {cli.one_line(e)[:200]}") from e
  if not isinstance(opts, dict):
    raise TorchWeightsError(f"options file {path} is not a YAML mapping")
  return opts


def load_torch_weights(path: str | pathlib.Path, model_name: str, scale: int,
                       param_key: str | None = None, options: Mapping | None = None,
                       check_hparams: bool = True, **model_overrides):
  """Reads a PyTorch .pth / Lightning .ckpt file and returns Flax params (see
  `convert_state_dict`). Hyperparameters recorded in the checkpoint or in `options` (a BasicSR
  options dict, `read_options`) must agree with the model unless `check_hparams=False`."""
  torch_files.require_torch()
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"weights file not found: {path}")
  try:
    checkpoint = torch_files.read_checkpoint(path)
  except Exception as e:  # any failure (a text file raises KeyError: 101…)
    raise TorchWeightsError(f"cannot read {path} as PyTorch weights: it is not a weights file "
                            f"({torch_files.why_unreadable(e, path)}); give a .pth/.ckpt state "
                            "dict saved by torch.save") from None
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
