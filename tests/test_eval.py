"""The evaluation protocol over folders, the results table, and eval.py's model selection
(through the model loader)."""
import json
import math
import pathlib
import sys

import numpy as np
import pytest

from memsr_jax import checkpoints
from memsr_jax import evaluation
from memsr_jax.image import bicubic
from memsr_jax.image import io as image_io
from memsr_jax.image import metrics
from memsr_jax.inference.source import load_source

REPO = pathlib.Path(__file__).resolve().parents[1]


def _eval_module():
  sys.path.insert(0, str(REPO))
  try:
    from configs import eval as eval_config
  finally:
    sys.path.remove(str(REPO))
  from memsr_jax.tools import eval as eval_module
  return eval_module, eval_config


def _bicubic_up(scale):
  return lambda lr: bicubic.imresize_np(lr[0], scale=scale)[None]


def _folder_with_bad_images(tmp_path, sample_image):
  d = tmp_path / "imgs"
  image_io.write_png(d / "a.png", sample_image[:40, :48])
  image_io.write_png(d / "b.png", sample_image[100:148, 50:90])
  data = (d / "a.png").read_bytes()
  (d / "cut.png").write_bytes(data[: len(data) // 2])
  image_io.write_png(d / "tiny.png", sample_image[:1, :30])
  (d / "readme.jpg").write_text("not an image")
  return d


def test_evaluate_reports_bad_images_and_evaluates_the_rest(tmp_path, sample_image):
  d = _folder_with_bad_images(tmp_path, sample_image)
  r = evaluation.evaluate_dataset(_bicubic_up(2), str(d), 2, None, save_dir=str(tmp_path / "sr"))
  assert r["n_images"] == 2 and sorted(r["per_image"]) == ["a", "b"]
  assert sorted(r["errors"]) == ["cut", "readme", "tiny"]
  assert "truncated" in r["errors"]["cut"] and "smaller than the scale" in r["errors"]["tiny"]
  # The mean and the per-image numbers follow the protocol step by step.
  hr = image_io.mod_crop(image_io.read_image(d / "a.png"), 2)
  sr = metrics.to_uint8(bicubic.imresize_np(bicubic.bicubic_downscale(hr, 2), scale=2))
  assert r["per_image"]["a"]["psnr"] == pytest.approx(metrics.psnr(sr, hr, crop=2), abs=1e-12)
  assert r["per_image"]["a"]["ssim"] == pytest.approx(metrics.ssim(sr, hr, crop=2), abs=1e-12)
  assert r["psnr"] == pytest.approx(np.mean([v["psnr"] for v in r["per_image"].values()]))
  np.testing.assert_array_equal(image_io.read_image(tmp_path / "sr" / "a.png"), sr)
  assert 20 < r["psnr"] < 45


def test_evaluate_checks_the_prediction_shape(tmp_path, sample_image):
  image_io.write_png(tmp_path / "d" / "a.png", sample_image[:32, :32])
  with pytest.raises(ValueError, match=r"is the model built for ×3"):
    evaluation.evaluate_dataset(_bicubic_up(2), str(tmp_path / "d"), 3, None)


def test_unknown_dataset_and_empty_folder(tmp_path):
  with pytest.raises(ValueError, match="unknown dataset"):
    evaluation.evaluate_dataset(_bicubic_up(2), "set6", 2, str(tmp_path))
  (tmp_path / "empty").mkdir()
  with pytest.raises(FileNotFoundError, match="no images"):
    evaluation.evaluate_dataset(_bicubic_up(2), str(tmp_path / "empty"), 2, None)


def test_format_table_and_summary():
  results = {"set5": {2: {"psnr": 38.004, "ssim": 0.96051, "n_images": 5, "per_image": {}},
                      4: {"psnr": 32.2, "ssim": 0.8948, "n_images": 5}},
             "set14": {2: {"psnr": 33.63, "ssim": 0.9177, "n_images": 14}}}
  summary = evaluation.summary(results)
  assert summary["set5"]["x2"] == {"psnr": 38.004, "ssim": 0.96051, "n_images": 5}
  table = evaluation.format_table(summary).splitlines()
  assert table[0].split()[:3] == ["dataset", "×2", "PSNR"]
  assert "38.00 / 0.9605" in table[2] and "32.20 / 0.8948" in table[2]
  assert table[3].split()[-1] == "-"  # set14 has no ×4


def test_eval_cli_bicubic_on_skimage_val(tmp_path):
  eval_module, eval_config = _eval_module()
  c = eval_config.get_config()
  c.datasets = "skimage_val"
  c.scales = "4"
  c.output_dir = str(tmp_path / "out")
  c.save_images = True
  summary = eval_module.run(c)
  saved = json.loads((tmp_path / "out" / "results.json").read_text())
  assert saved == summary and saved["skimage_val"]["x4"]["n_images"] == 2
  assert 20 < saved["skimage_val"]["x4"]["psnr"] < 40
  assert (tmp_path / "out" / "images" / "skimage_val" / "x4" / "coffee.png").is_file()


def test_eval_cli_rejects_unusable_model_configs(tmp_path):
  eval_module, eval_config = _eval_module()
  c = eval_config.get_config()
  c.model.name = "imdn"
  with pytest.raises(ValueError, match="has no weights"):
    eval_module.build_predictors(c)
  c.model.torch_weights = "/x/IMDN_x2.pth"
  c.scales = "2,3"
  with pytest.raises(ValueError, match="put {scale}"):
    eval_module.build_predictors(c)
  c.scales = "2,x"
  with pytest.raises(ValueError, match="not an integer"):
    eval_module.build_predictors(c)
  c.model.level = 3
  with pytest.raises(ValueError, match="holds no level map"):
    load_source(preset="edsr_mini", scale=2, level=3)


def test_eval_cli_checkpoint_scale_mismatch(tmp_path, monkeypatch):
  eval_module, eval_config = _eval_module()
  monkeypatch.setattr(checkpoints, "load_model_checkpoint",
                      lambda path, step=None: (None, {}, {"scale": 2, "model": "edsr_mini"}))
  c = eval_config.get_config()
  c.model.checkpoint = str(tmp_path)
  c.scales = "2,4"
  with pytest.raises(ValueError, match=r"×2 model .*cannot evaluate ×\[4\]"):
    eval_module.build_predictors(c)
  c.scales = ""
  scales, _, _ = eval_module.build_predictors(c)
  assert scales == [2]


def test_bicubic_set5_x2_from_shared(shared_dir):
  # MATLAB-bicubic LR and upscaling, float64 until the final rounding: 33.6818 dB / 0.9305 (papers
  # print 33.66 / 0.9299, made by older code). The band is narrow enough to catch near-misses
  # measured on the same images: LR from jax.image.resize(antialias) 33.6810, from PIL bicubic
  # 33.6789; RGB instead of Y 31.80.
  r = evaluation.evaluate_dataset(_bicubic_up(2), "set5", 2, str(shared_dir / "datasets"))
  assert r["n_images"] == 5 and not r["errors"]
  assert r["psnr"] == pytest.approx(33.6818, abs=3e-4)
  assert r["ssim"] == pytest.approx(0.9305, abs=2e-4)
  assert math.isfinite(r["psnr"])


@pytest.mark.slow
def test_eval_cli_official_imdn_x4_set5_parity(shared_dir, tmp_path):
  # Published IMDN Set5 ×4: 32.21 / 0.8948; the protocol's parity band is ±0.01 dB, ±0.0005.
  pytest.importorskip("torch")
  eval_module, eval_config = _eval_module()
  c = eval_config.get_config()
  c.model.name = "imdn"
  c.model.torch_weights = str(shared_dir / "weights" / "imdn" / "IMDN_x{scale}.pth")
  c.scales = "4"
  c.datasets = "set5"
  c.data_dir = str(shared_dir / "datasets")
  c.output_dir = str(tmp_path)
  r = eval_module.run(c)["set5"]["x4"]
  assert r["n_images"] == 5
  assert r["psnr"] == pytest.approx(32.21, abs=0.01)
  assert r["ssim"] == pytest.approx(0.8948, abs=5e-4)


def test_eval_of_a_nan_model_is_an_error_not_a_number(tmp_path):
  import nan_models

  from memsr_jax.utils import cli
  eval_module, eval_config = _eval_module()
  c = eval_config.get_config()
  c.model.checkpoint = str(nan_models.nan_checkpoint(tmp_path / "model"))
  c.datasets = "skimage_val"
  c.scales = "2"
  c.output_dir = str(tmp_path / "out")
  with pytest.raises(cli.UserError, match=r"edsr_mini from .*model outputs NaN .*weights are "):
    eval_module.run(c)
  assert not (tmp_path / "out").exists()


def test_eval_results_never_go_inside_a_checkpoint_tree(tmp_path):
  from memsr_jax.utils import cli
  eval_module, eval_config = _eval_module()
  c = eval_config.get_config()
  run = tmp_path / "run"
  (run / "checkpoints" / "6").mkdir(parents=True)
  (run / "checkpoints" / "6" / "_CHECKPOINT_METADATA").write_text("{}")
  for out in (run / "checkpoints" / "6", run / "checkpoints" / "6" / "eval", run):
    c.output_dir = str(out)
    with pytest.raises(cli.UserError, match="checkpoint tree"):
      eval_module.check_not_in_checkpoint(c)
  c.output_dir = str(run / "eval")  # a folder beside the checkpoints is fine
  eval_module.check_not_in_checkpoint(c)


def test_an_experiment_row_of_a_nan_model_is_refused(tmp_path, sample_image):
  import types

  import nan_models

  from memsr_jax.experiments import base
  from memsr_jax.experiments import rows
  from memsr_jax.utils import cli
  nan_models.nan_checkpoint(tmp_path / "run" / "model")
  row = base.Row(label="diverged", run="run", source=("checkpoint", "model"), measure=False)
  predict, _ = rows.row_model(row, types.SimpleNamespace(scale=2, columns=()), tmp_path)
  image_io.write_png(tmp_path / "set" / "a.png", sample_image[:32, :32])
  with pytest.raises(cli.UserError, match="outputs NaN"):
    evaluation.evaluate_dataset(predict, str(tmp_path / "set"), 2, None)
