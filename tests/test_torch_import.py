"""PyTorch → Flax weight import: tiny reference nets with random weights, outputs compared.

Tolerance: max |Flax − PyTorch| ≤ 1e-4 on the 0..255 output scale, with both sides computed in
float64 (jax.enable_x64, torch .double()), so the check measures the port and not float32
rounding; in float32 the two differ by float32 rounding alone (≈1e-6 relative, i.e. up to a few
1e-4 for outputs of a few hundred), which `F32_RTOL` bounds as a second check.
"""
import copy
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memsr_jax import import_weights
from memsr_jax.interop import torch_import
from memsr_jax.models import registry

torch = pytest.importorskip("torch")
import torch_refs  # noqa: E402  (needs torch, imported just above)

ATOL = 1e-4  # on 0..255, float64 on both sides
F32_RTOL = 5e-6  # float32 runs: max diff relative to max |output|


def _flax_out(model_name, scale, params, x255, **overrides):
  model = registry.build_model(model_name, scale=scale, **overrides)
  # jit: one compile beats eager dispatch of every small op (which compiles each op too).
  run = jax.jit(lambda p, x: model.apply({"params": p}, x))
  with jax.default_matmul_precision("highest"):
    return np.asarray(run(params, jnp.asarray(x255)))


def _torch_out(net, x, in_range):
  with torch.no_grad():
    return torch_refs.nchw_to_nhwc(net(torch_refs.nhwc_to_nchw(x / 255.0 * in_range))) \
        * (255.0 / in_range)


def _check_match(net, model_name, scale, params, x, in_range, **overrides):
  """Asserts the Flax model with `params` reproduces `net`; returns the float32 output."""
  with jax.enable_x64(True):
    params64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
    out64 = _flax_out(model_name, scale, params64, x.astype(np.float64), **overrides)
  ref64 = _torch_out(copy.deepcopy(net).double(), x.astype(np.float64), in_range)
  assert out64.dtype == np.float64 and ref64.dtype == np.float64
  diff64 = np.abs(out64 - ref64).max()
  assert diff64 <= ATOL, f"float64 max diff {diff64}"
  out32 = _flax_out(model_name, scale, params, x, **overrides)
  ref32 = _torch_out(net, x, in_range)
  assert out32.shape == ref32.shape
  diff32 = np.abs(out32 - ref32).max()
  assert diff32 <= F32_RTOL * max(np.abs(ref32).max(), 1.0), f"float32 max diff {diff32}"
  assert np.abs(out32).max() > 1.0  # not a trivially vanishing output
  return out32


def _lr(rng, h, w):
  return rng.uniform(0, 255, (1, h, w, 3)).astype(np.float32)


EDSR_TINY = dict(n_feats=8, n_resblocks=2)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_edsr_official_layout(rng, scale):
  net = torch_refs.randomize_(torch_refs.EDSROfficial(scale, 8, 2), seed=scale).eval()
  sd = net.state_dict()
  assert "sub_mean.weight" in sd and "tail.1.weight" in sd  # the layout under test
  params = torch_import.convert_state_dict(sd, "edsr_baseline", scale, **EDSR_TINY)
  _check_match(net, "edsr_baseline", scale, params, _lr(rng, 11, 9), 255.0, **EDSR_TINY)


def test_edsr_official_res_scale(rng):
  net = torch_refs.randomize_(torch_refs.EDSROfficial(2, 8, 3, res_scale=0.1), seed=7).eval()
  kw = dict(n_feats=8, n_resblocks=3)
  params = torch_import.convert_state_dict(net.state_dict(), "edsr", 2, **kw)
  _check_match(net, "edsr", 2, params, _lr(rng, 8, 8), 255.0, **kw)


@pytest.mark.parametrize("scale,wrapper", [(2, None), (4, "params_ema")])
def test_edsr_basicsr_layout(rng, scale, wrapper):
  # res_scale 2: the released EDSRmini (the edsr_mini preset), so a mismatch would show here.
  net = torch_refs.randomize_(torch_refs.EDSRBasicSR(scale, 8, 2, res_scale=2.0), seed=scale).eval()
  sd = net.state_dict()
  assert "conv_first.weight" in sd and not any("mean" in k for k in sd)
  ckpt = sd if wrapper is None else {wrapper: sd}
  params = torch_import.convert_state_dict(ckpt, "edsr_mini", scale, **EDSR_TINY)
  _check_match(net, "edsr_mini", scale, params, _lr(rng, 10, 7), 1.0, **EDSR_TINY)


IMDN_TINY = dict(n_feats=16, n_blocks=2)


@pytest.mark.parametrize("scale", [2, 3])
def test_imdn_official_layout(rng, scale):
  # Weight scale 0.05 keeps outputs in a realistic range (tens to hundreds).
  net = torch_refs.randomize_(torch_refs.IMDNRef(scale, 16, 2), seed=scale, std=0.05).eval()
  # The release was saved from nn.DataParallel: every key starts with "module.".
  sd = {f"module.{k}": v for k, v in net.state_dict().items()}
  params = torch_import.convert_state_dict(sd, "imdn", scale, **IMDN_TINY)
  _check_match(net, "imdn", scale, params, _lr(rng, 12, 9), 1.0, **IMDN_TINY)


SWIN_TINY = dict(embed_dim=12, depths=(2, 2), num_heads=(2, 3), window_size=4, mlp_ratio=2.0)


@pytest.mark.parametrize("upsampler,scale", [("pixelshuffledirect", 2), ("pixelshuffledirect", 3),
                                             ("pixelshuffle", 4), ("pixelshuffle", 3)])
def test_swinir_official_layout(rng, upsampler, scale):
  net = torch_refs.SwinIRRef(scale, 12, (2, 2), (2, 3), 4, 2.0, upsampler, train_size=8,
                             num_feat=8)
  net = torch_refs.randomize_(net, seed=scale).eval()
  sd = net.state_dict()
  # Buffers of the release that are not params: checked / skipped by the importer.
  assert "layers.0.residual_group.blocks.1.attn_mask" in sd
  assert "layers.1.residual_group.blocks.0.attn.relative_position_index" in sd
  kw = dict(SWIN_TINY, upsampler=upsampler, num_feat=8)
  params = torch_import.convert_state_dict({"params": sd}, "swinir_mini", scale, **kw)
  assert "relative_position_index" not in json.dumps(jax.tree.map(lambda a: 0, params))
  # 13×10 is not a multiple of the window (4): exercises reflect padding, cropping and the
  # shifted-window mask computed for the padded 16×12 map (differs from the 8×8 training mask).
  out = _check_match(net, "swinir_mini", scale, params, _lr(rng, 13, 10), 1.0, **kw)
  assert out.shape == (1, 13 * scale, 10 * scale, 3)


# ------------------------------------------------------------------------------ bad inputs


def _tiny_imdn_sd(scale=2):
  return torch_refs.IMDNRef(scale, 16, 2).state_dict()


def test_unknown_key_is_named():
  sd = dict(_tiny_imdn_sd())
  sd["IMDB1.extra.weight"] = torch.zeros(3)
  with pytest.raises(ValueError, match=r"unknown key.*IMDB1\.extra\.weight"):
    torch_import.convert_state_dict(sd, "imdn", 2, **IMDN_TINY)


def test_missing_key_is_named():
  sd = dict(_tiny_imdn_sd())
  del sd["IMDB2.cca.conv_du.2.bias"]
  with pytest.raises(ValueError, match=r"missing key.*IMDB2\.cca\.conv_du\.2\.bias"):
    torch_import.convert_state_dict(sd, "imdn", 2, **IMDN_TINY)


def test_shape_mismatch_names_key_and_shapes():
  sd = _tiny_imdn_sd(scale=3)  # upsampler has 27 outputs, a ×2 model expects 12
  with pytest.raises(ValueError, match=r"upsampler\.0\.weight: checkpoint \(27, 16, 3, 3\), "
                                       r"model expects \(12, 16, 3, 3\)"):
    torch_import.convert_state_dict(sd, "imdn", 2, **IMDN_TINY)


def test_edsr_mean_shift_is_checked():
  net = torch_refs.EDSROfficial(2, 8, 2)
  sd = dict(net.state_dict())
  sd["sub_mean.bias"] = torch.tensor([-100.0, -100.0, -100.0])
  with pytest.raises(ValueError, match="sub_mean.bias.*rgb_mean"):
    torch_import.convert_state_dict(sd, "edsr_baseline", 2, **EDSR_TINY)


def test_swinir_window_mismatch():
  net = torch_refs.SwinIRRef(2, 12, (2, 2), (2, 3), 4, 2.0, "pixelshuffledirect", train_size=8)
  kw = dict(SWIN_TINY, window_size=8)
  with pytest.raises(ValueError, match="relative_position_bias_table"):
    torch_import.convert_state_dict(net.state_dict(), "swinir_mini", 2, **kw)


def test_unsupported_model():
  with pytest.raises(ValueError, match="no PyTorch import for model 'plain_s'"):
    torch_import.convert_state_dict({}, "plain_s", 2)


# ------------------------------------------------------------------------------ files and CLI


def test_load_torch_weights_file(tmp_path, rng):
  net = torch_refs.randomize_(torch_refs.IMDNRef(2, 16, 2), seed=3, std=0.05).eval()
  path = tmp_path / "imdn.pth"
  torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, path)
  params = torch_import.load_torch_weights(path, "imdn", 2, **IMDN_TINY)
  _check_match(net, "imdn", 2, params, _lr(rng, 8, 8), 1.0, **IMDN_TINY)
  with pytest.raises(FileNotFoundError):
    torch_import.load_torch_weights(tmp_path / "nope.pth", "imdn", 2)


def test_cli_writes_loadable_checkpoint(tmp_path, rng):
  checkpoint = pytest.importorskip("memsr_jax.train.checkpoint")
  if not hasattr(checkpoint, "save_model_checkpoint"):
    pytest.skip("memsr_jax.train.checkpoint.save_model_checkpoint not available")
  net = torch_refs.randomize_(torch_refs.IMDNRef(2, 16, 2), seed=4, std=0.05).eval()
  src = tmp_path / "imdn.pth"
  torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, src)
  out = tmp_path / "ckpt"
  import_weights.main(["--weights", str(src), "--model", "imdn", "--scale", "2", "--out", str(out),
                       "--set", "n_feats=16", "--set", "n_blocks=2"])
  model, params, meta = checkpoint.load_model_checkpoint(out)
  assert meta["architecture"] == "imdn" and meta["scale"] == 2
  assert meta["source_md5"] == import_weights.file_md5(src)
  assert meta["model_kwargs"]["n_feats"] == 16
  x = _lr(rng, 8, 8)
  with jax.default_matmul_precision("highest"):
    y = np.asarray(model.apply({"params": params}, jnp.asarray(x)))
  assert np.abs(y - _torch_out(net, x, 1.0)).max() <= ATOL
