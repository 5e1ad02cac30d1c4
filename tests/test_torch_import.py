"""PyTorch → Flax weight import: tiny reference nets with random weights, outputs compared.

Tolerance: max |Flax − PyTorch| ≤ 1e-4 on the 0..255 output scale, with both sides computed in
float64 (jax.enable_x64, torch .double()), so the check measures the port and not float32
rounding; in float32 the two differ by float32 rounding alone (≈1e-6 relative, i.e. up to a few
1e-4 for outputs of a few hundred), which `F32_RTOL` bounds as a second check.
"""
import copy
import json
import os
import pathlib
import pickle
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from memsr_jax import checkpoints
from memsr_jax import import_weights
from memsr_jax.interop import torch_import
from memsr_jax.models import registry
from memsr_jax.utils import cli

torch = pytest.importorskip("torch")
from memsr_jax.interop import torch_models  # noqa: E402  (needs torch, imported just above)
from memsr_jax.interop import torch_swinir  # noqa: E402

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
    return torch_models.nchw_to_nhwc(net(torch_models.nhwc_to_nchw(x / 255.0 * in_range))) \
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


@pytest.mark.parametrize("name,scale,kw", [
    ("plain", 2, dict(widths=(3, 8, 8), bias_mode="map", tail_kernel=3)),
    ("plain", 3, dict(widths=(3, 8, 8, 8), relu=(True, False, True), sub_mean=False)),
    ("edsr_baseline", 3, EDSR_TINY),
    ("edsr_baseline", 2, dict(EDSR_TINY, tail="conv1x1")),
])
def test_torch_reference_of_a_jax_model(rng, name, scale, kw):
  """from_jax: the benchmarks' PyTorch twin computes the JAX model with the same weights."""
  model = registry.build_model(name, scale=scale, **kw)
  params = registry.random_params(model, seed=scale)
  net = torch_models.from_jax(model, params)
  _check_match(net, name, scale, params, _lr(rng, 9, 7), 255.0, **kw)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_edsr_official_layout(rng, scale):
  net = torch_models.randomize_(torch_models.EDSROfficial(scale, 8, 2), seed=scale).eval()
  sd = net.state_dict()
  assert "sub_mean.weight" in sd and "tail.1.weight" in sd  # the layout under test
  params = torch_import.convert_state_dict(sd, "edsr_baseline", scale, **EDSR_TINY)
  _check_match(net, "edsr_baseline", scale, params, _lr(rng, 11, 9), 255.0, **EDSR_TINY)


def test_edsr_official_res_scale(rng):
  net = torch_models.randomize_(torch_models.EDSROfficial(2, 8, 3, res_scale=0.1), seed=7).eval()
  kw = dict(n_feats=8, n_resblocks=3)
  params = torch_import.convert_state_dict(net.state_dict(), "edsr", 2, **kw)
  _check_match(net, "edsr", 2, params, _lr(rng, 8, 8), 255.0, **kw)


@pytest.mark.parametrize("scale,wrapper", [(2, None), (4, "params_ema")])
def test_edsr_basicsr_layout(rng, scale, wrapper):
  # res_scale 2: the released EDSRmini (the edsr_mini preset), so a mismatch would show here.
  net = torch_models.randomize_(torch_models.EDSRBasicSR(scale, 8, 2, res_scale=2.0),
                                seed=scale).eval()
  sd = net.state_dict()
  assert "conv_first.weight" in sd and not any("mean" in k for k in sd)
  ckpt = sd if wrapper is None else {wrapper: sd}
  params = torch_import.convert_state_dict(ckpt, "edsr_mini", scale, **EDSR_TINY)
  _check_match(net, "edsr_mini", scale, params, _lr(rng, 10, 7), 1.0, **EDSR_TINY)


IMDN_TINY = dict(n_feats=16, n_blocks=2)


@pytest.mark.parametrize("scale", [2, 3])
def test_imdn_official_layout(rng, scale):
  # Weight scale 0.05 keeps outputs in a realistic range (tens to hundreds).
  net = torch_models.randomize_(torch_models.IMDNRef(scale, 16, 2), seed=scale, std=0.05).eval()
  # The release was saved from nn.DataParallel: every key starts with "module.".
  sd = {f"module.{k}": v for k, v in net.state_dict().items()}
  params = torch_import.convert_state_dict(sd, "imdn", scale, **IMDN_TINY)
  _check_match(net, "imdn", scale, params, _lr(rng, 12, 9), 1.0, **IMDN_TINY)


SWIN_TINY = dict(embed_dim=12, depths=(2, 2), num_heads=(2, 3), window_size=4, mlp_ratio=2.0)


@pytest.mark.parametrize("upsampler,scale", [("pixelshuffledirect", 2), ("pixelshuffledirect", 3),
                                             ("pixelshuffle", 4), ("pixelshuffle", 3)])
def test_swinir_official_layout(rng, upsampler, scale):
  net = torch_swinir.SwinIRRef(scale, 12, (2, 2), (2, 3), 4, 2.0, upsampler, train_size=8,
                             num_feat=8)
  net = torch_models.randomize_(net, seed=scale).eval()
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
  return torch_models.IMDNRef(scale, 16, 2).state_dict()


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
  net = torch_models.EDSROfficial(2, 8, 2)
  sd = dict(net.state_dict())
  sd["sub_mean.bias"] = torch.tensor([-100.0, -100.0, -100.0])
  with pytest.raises(ValueError, match="sub_mean.bias.*rgb_mean"):
    torch_import.convert_state_dict(sd, "edsr_baseline", 2, **EDSR_TINY)


def test_swinir_window_mismatch():
  net = torch_swinir.SwinIRRef(2, 12, (2, 2), (2, 3), 4, 2.0, "pixelshuffledirect", train_size=8)
  kw = dict(SWIN_TINY, window_size=8)
  with pytest.raises(ValueError, match="relative_position_bias_table"):
    torch_import.convert_state_dict(net.state_dict(), "swinir_mini", 2, **kw)


def test_unsupported_model():
  with pytest.raises(ValueError, match="no PyTorch import for model 'plain_s'"):
    torch_import.convert_state_dict({}, "plain_s", 2)


# ------------------------------------------------------------------------------ files and CLI


def test_load_torch_weights_file(tmp_path, rng):
  net = torch_models.randomize_(torch_models.IMDNRef(2, 16, 2), seed=3, std=0.05).eval()
  path = tmp_path / "imdn.pth"
  torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, path)
  params = torch_import.load_torch_weights(path, "imdn", 2, **IMDN_TINY)
  _check_match(net, "imdn", 2, params, _lr(rng, 8, 8), 1.0, **IMDN_TINY)
  with pytest.raises(FileNotFoundError):
    torch_import.load_torch_weights(tmp_path / "nope.pth", "imdn", 2)


def test_cli_writes_loadable_checkpoint(tmp_path, rng):
  checkpoint = pytest.importorskip("memsr_jax.checkpoints")
  if not hasattr(checkpoint, "save_model_checkpoint"):
    pytest.skip("memsr_jax.checkpoints.save_model_checkpoint not available")
  net = torch_models.randomize_(torch_models.IMDNRef(2, 16, 2), seed=4, std=0.05).eval()
  src = tmp_path / "imdn.pth"
  torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, src)
  out = tmp_path / "ckpt"
  import_weights.main(["--weights", str(src), "--model", "imdn", "--scale", "2", "--out", str(out),
                       "--set", "n_feats=16", "--set", "n_blocks=2"])
  model, params, meta = checkpoints.load_model_checkpoint(out)
  assert meta["architecture"] == "imdn" and meta["scale"] == 2
  assert meta["source_md5"] == import_weights.file_md5(src)
  assert meta["model_kwargs"]["n_feats"] == 16
  x = _lr(rng, 8, 8)
  with jax.default_matmul_precision("highest"):
    y = np.asarray(model.apply({"params": params}, jnp.asarray(x)))
  assert np.abs(y - _torch_out(net, x, 1.0)).max() <= ATOL


# ------------------------------------------------------------------------------ MemSR teachers


class ModelCheckpoint:
  """Stands for a Lightning callback class: PL 1.3 pickles callback states keyed by their type,
  which torch.load(weights_only=True) refuses."""


def _touch(path):  # what a hostile pickle would run; the restricted reader must never call it
  pathlib.Path(path).touch()
  return "ran"


class _Hostile:
  def __init__(self, path):
    self.path = path

  def __reduce__(self):
    return (_touch, (str(self.path),))


MEMSR_TINY = dict(n_feats=8, n_resblocks=2, body_bias="map")


def _lightning_ckpt(net, scale, marker, **backbone):
  """A PyTorch Lightning checkpoint as the MemSR release writes it (PL 1.3.8)."""
  backbone = {"arch": "EDSR_layerwise_sr", "n_feats": 8, "n_resblocks": 2, "simple_tail": True,
              "scale": scale, **backbone}
  return {"epoch": 3, "global_step": 1000, "pytorch-lightning_version": "1.3.8",
          "state_dict": torch_models.LightningWrapper(net).state_dict(),
          "callbacks": {ModelCheckpoint: {"best_model_score": torch.tensor(30.1)}},
          "lr_schedulers": [{"anneal_func": _Hostile(marker), "last_epoch": 1000}],
          "hyper_parameters": {"backbone": backbone, "scale": scale, "rgb_range": 255,
                               "dataset": {"name": "DIV2K", "scale": scale}}}


@pytest.mark.parametrize("scale,simple_tail,legacy", [(4, True, False), (2, True, True),
                                                      (3, False, False)])
def test_memsr_lightning_teacher(tmp_path, rng, scale, simple_tail, legacy):
  net = torch_models.randomize_(torch_models.MemSRTeacher(scale, 8, 2, simple_tail), seed=scale)
  net = net.eval()
  marker = tmp_path / "code_ran"
  ckpt = _lightning_ckpt(net, scale, marker, simple_tail=simple_tail)
  sd = ckpt["state_dict"]
  # The layout under test: Lightning's `model.` prefix, ones-channel body convs with no bias.
  assert sd["model.sequential_models.1.sequential_models.0.sequential_models.0.conv.weight"
            ].shape == (8, 9, 3, 3)
  assert "model.sequential_models.1.sequential_models.2.conv.weight" in sd
  assert not any(k.endswith("sequential_models.0.conv.bias") and ".1." in k for k in sd)
  path = tmp_path / "teacher.ckpt"
  torch.save(ckpt, path, _use_new_zipfile_serialization=not legacy)
  with pytest.raises(pickle.UnpicklingError):  # the reason for the restricted reader
    torch.load(path, weights_only=True)
  kw = dict(MEMSR_TINY, tail="conv1x1" if simple_tail else "upsampler")
  params = torch_import.load_torch_weights(path, "memsr_teacher_s", scale, **kw)
  assert not marker.exists()  # nothing named by the file ran
  assert params["body_0"]["conv1"]["bias_map"].shape == (3, 3, 1, 8)
  _check_match(net, "memsr_teacher_s", scale, params, _lr(rng, 9, 11), 255.0, **kw)


def test_memsr_teacher_needs_bias_maps_and_no_res_scale():
  net = torch_models.MemSRTeacher(2, 8, 2)
  sd = torch_models.LightningWrapper(net).state_dict()
  with pytest.raises(ValueError, match="body_bias='map'"):
    torch_import.convert_state_dict(sd, "memsr_teacher_s", 2, n_feats=8, n_resblocks=2)
  with pytest.raises(ValueError, match="no residual scaling.*res_scale=1.0"):
    torch_import.convert_state_dict(sd, "memsr_teacher_s", 2, res_scale=0.1, **MEMSR_TINY)
  with pytest.raises(ValueError, match="vector biases"):  # and the other way round
    torch_import.convert_state_dict(torch_models.EDSROfficial(2, 8, 2).state_dict(),
                                    "edsr_baseline", 2, body_bias="map", **EDSR_TINY)


def test_recorded_hparams_that_contradict_the_model_are_refused(tmp_path):
  net = torch_models.MemSRTeacher(4, 8, 3)
  path = tmp_path / "teacher.ckpt"
  torch.save(_lightning_ckpt(net, 4, tmp_path / "m", n_resblocks=3), path)
  with pytest.raises(torch_import.TorchWeightsError,
                     match=r"hyper_parameters.backbone has n_resblocks=3.*--set n_resblocks=3"):
    torch_import.load_torch_weights(path, "memsr_teacher_s", 4, **MEMSR_TINY)
  with pytest.raises(torch_import.TorchWeightsError, match="simple_tail=True.*--set tail=conv1x1"):
    torch_import.load_torch_weights(path, "memsr_teacher_s", 4, tail="upsampler",
                                    **dict(MEMSR_TINY, n_resblocks=3))
  params = torch_import.load_torch_weights(path, "memsr_teacher_s", 4,
                                           **dict(MEMSR_TINY, n_resblocks=3))
  assert "body_2" in params


def _basicsr_options(res_scale, **net):
  return {"name": "EDSR_Minix2", "scale": 2,
          "network_g": {"type": "EDSR", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 8,
                        "num_block": 2, "upscale": 2, "res_scale": res_scale, "img_range": 255.0,
                        "rgb_mean": [0.4488, 0.4371, 0.4040], **net}}


def test_res_scale_mismatch_is_refused_from_the_options(tmp_path, rng):
  """The released EDSRmini uses res_scale 2; with its options file a model built with another
  res_scale (which would import cleanly and give wrong outputs) is refused."""
  net = torch_models.randomize_(torch_models.EDSRBasicSR(2, 8, 2, res_scale=2.0), seed=1).eval()
  path = tmp_path / "edsr_mini.pth"
  torch.save({"params": net.state_dict()}, path)
  opts = _basicsr_options(2)
  with pytest.raises(torch_import.TorchWeightsError,
                     match=r"options network_g has res_scale=2, but the model has "
                           r"res_scale=1.0: pass --set res_scale=2"):
    torch_import.load_torch_weights(path, "edsr_mini", 2, options=opts, res_scale=1.0,
                                    **EDSR_TINY)
  with pytest.raises(torch_import.TorchWeightsError, match="type='SwinIR'"):
    torch_import.load_torch_weights(path, "edsr_mini", 2, options=_basicsr_options(2,
                                    type="SwinIR"), **EDSR_TINY)
  params = torch_import.load_torch_weights(path, "edsr_mini", 2, options=opts, **EDSR_TINY)
  _check_match(net, "edsr_mini", 2, params, _lr(rng, 8, 9), 1.0, **EDSR_TINY)
  # The check can be skipped on purpose; the outputs then differ, which is why it exists.
  wrong = torch_import.load_torch_weights(path, "edsr_mini", 2, options=opts, res_scale=1.0,
                                          check_hparams=False, **EDSR_TINY)
  x = _lr(rng, 8, 9)
  assert np.abs(_flax_out("edsr_mini", 2, wrong, x, res_scale=1.0, **EDSR_TINY)
                - _torch_out(net, x, 1.0)).max() > 1.0


def test_cli_options_mismatch_is_a_user_error(tmp_path):
  yaml = pytest.importorskip("yaml")
  net = torch_models.EDSRBasicSR(2, 8, 2, res_scale=2.0)
  src = tmp_path / "edsr_mini.pth"
  torch.save({"params": net.state_dict()}, src)
  opt = tmp_path / "test_EDSR_Minix2.yml"
  opt.write_text(yaml.safe_dump(_basicsr_options(2)))
  out = tmp_path / "ckpt"
  args = ["--weights", str(src), "--model", "edsr_mini", "--scale", "2", "--out", str(out),
          "--set", "n_feats=8", "--set", "n_resblocks=2", "--options", str(opt)]
  with pytest.raises(torch_import.TorchWeightsError, match="--set res_scale=2"):
    import_weights.main(args + ["--set", "res_scale=1.0"])
  assert not out.exists()
  import_weights.main(args)
  _, _, meta = checkpoints.load_model_checkpoint(out)
  assert meta["source_options"] == str(opt.resolve())
  assert meta["model_kwargs"]["res_scale"] == 2.0


@pytest.mark.parametrize("content", [
    b"hello world\n" * 10,                                      # text
    pickle.dumps({"a": np.zeros(3)}),                           # a pickle of other objects
    pickle.dumps(os.getcwd),                                    # a pickled function
    b"",                                                        # empty
    b"\x89PNG\r\n\x1a\n" + b"0" * 100,                          # another format
])
def test_a_file_that_is_not_a_weights_file_never_gets_unsafe_advice(tmp_path, capfd, content):
  path = tmp_path / "w.pth"
  path.write_bytes(content)
  with pytest.raises(torch_import.TorchWeightsError) as e:
    torch_import.load_torch_weights(path, "imdn", 2)
  msg = str(e.value)
  assert "is not a weights file" in msg and str(path) in msg
  assert "weights_only" not in msg and "False" not in msg
  assert "weights_only" not in capfd.readouterr().err


@pytest.mark.parametrize("content, why", [
    (b"\x89PNG\r\n\x1a\n" + b"0" * 100, "it is a PNG image, not a PyTorch checkpoint"),
    (b"hello world\n" * 10, "it is not a PyTorch checkpoint (torch.save writes a zip archive"),
    (pickle.dumps(os.getcwd), "it pickles objects other than tensors"),
])
def test_the_reason_a_file_is_not_weights_names_its_format(tmp_path, content, why):
  path = tmp_path / "w.pth"
  path.write_bytes(content)
  with pytest.raises(torch_import.TorchWeightsError, match=re.escape(why)):
    torch_import.load_torch_weights(path, "imdn", 2)


@pytest.mark.parametrize("text, fragment", [
    ("network_g: " + "[" * 20000 + "]" * 20000 + "\n", "nested more than 64 levels"),
    ("a: &a [1, *a]\nnetwork_g: {type: IMDN}\n", "recursive alias"),
])
def test_a_hostile_options_file_is_one_line(tmp_path, text, fragment):
  opt = tmp_path / "opt.yml"
  opt.write_text(text)
  weights = tmp_path / "w.pth"
  weights.write_bytes(b"never read")
  with pytest.raises(torch_import.TorchWeightsError, match=fragment) as e:
    import_weights.main(["--weights", str(weights), "--model", "imdn", "--scale", "2",
                         "--options", str(opt), "--out", str(tmp_path / "out")])
  assert "\n" not in str(e.value) and not (tmp_path / "out").exists()


def test_import_refuses_any_input_inside_out(tmp_path):
  opt = tmp_path / "opt"
  opt.mkdir()
  (opt / "opts.yml").write_text("network_g: {type: IMDN}\n")
  (opt / "notes.txt").write_text("mine")
  weights = tmp_path / "w.pth"
  weights.write_bytes(b"checked only after --out")
  (tmp_path / "alias").symlink_to(opt)
  base = ["--weights", str(weights), "--model", "imdn", "--scale", "2"]
  for out in (opt, tmp_path / "alias", tmp_path):
    with pytest.raises(cli.UserError, match="the input --(options|torch_weights) .* lies inside"):
      import_weights.main(base + ["--options", str(opt / "opts.yml"), "--out", str(out),
                                  "--overwrite"])
  assert sorted(p.name for p in opt.iterdir()) == ["notes.txt", "opts.yml"]


@pytest.mark.parametrize("value", ["abc", "-3", "0"])
def test_import_checks_hyperparameter_values(tmp_path, value):
  weights = tmp_path / "w.pth"
  weights.write_bytes(b"never read")
  shown = "'abc'" if value == "abc" else value
  with pytest.raises(cli.UserError, match=f"n_feats={shown} \\(expected an integer >= 1\\)"):
    import_weights.main(["--weights", str(weights), "--model", "imdn", "--scale", "2",
                         "--set", f"n_feats={value}", "--out", str(tmp_path / "out")])
  assert not (tmp_path / "out").exists()
