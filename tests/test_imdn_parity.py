"""Official IMDN weights, ported to Flax, reproduce the published Set5/Set14 numbers.

Full protocol (memsr_jax/evaluation/protocol.py): HR → mod-crop → MATLAB bicubic LR → IMDN →
uint8 → Y-PSNR/SSIM with a `scale`-pixel border crop. Within ±0.01 dB and ±0.0005 SSIM of the
paper's table. Needs ../shared (weights and images) and torch (to read the .pth); skipped otherwise.
One case per (set, scale) so `pytest -n 2` can spread the ~3 CPU-minutes over workers.
"""
import jax.numpy as jnp
import numpy as np
import pytest

from memsr_jax import evaluation
from memsr_jax.inference import predictor
from memsr_jax.inference.source import load_source

# (PSNR, SSIM) published in the IMDN paper, (its Table).
PUBLISHED = {
    ("Set5", 2): (38.00, 0.9605), ("Set5", 3): (34.36, 0.9270), ("Set5", 4): (32.21, 0.8948),
    ("Set14", 2): (33.63, 0.9177), ("Set14", 3): (30.32, 0.8417), ("Set14", 4): (28.58, 0.7811),
}
N_IMAGES = {"Set5": 5, "Set14": 14}
PSNR_TOL, SSIM_TOL = 0.01, 0.0005


@pytest.mark.slow
@pytest.mark.parametrize("dataset,scale", sorted(PUBLISHED))
def test_imdn_matches_published(shared_dir, dataset, scale):
  pytest.importorskip("torch")
  weights = shared_dir / "weights" / "imdn" / f"IMDN_x{scale}.pth"
  if not weights.is_file():
    pytest.skip(f"{weights} not found")
  src = load_source(preset="imdn", scale=scale, torch_weights=str(weights))
  predict = predictor.model_predictor(src.model, src.params)  # HIGHEST: no TF32 on GPUs

  def run(lr):
    return np.asarray(predict(jnp.asarray(lr)))

  result = evaluation.evaluate_dataset(run, dataset, scale, str(shared_dir), use_lr_files=False)
  assert not result["errors"], result["errors"]
  assert result["n_images"] == N_IMAGES[dataset]
  psnr, ssim = PUBLISHED[(dataset, scale)]
  print(f"IMDN {dataset} x{scale}: {result['psnr']:.4f} / {result['ssim']:.5f} "
        f"(published {psnr:.2f} / {ssim:.4f}), {result['seconds']:.1f} s")
  assert abs(result["psnr"] - psnr) <= PSNR_TOL, (result["psnr"], psnr)
  assert abs(result["ssim"] - ssim) <= SSIM_TOL, (result["ssim"], ssim)
