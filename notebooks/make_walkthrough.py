"""Writes notebooks/walkthrough.ipynb (without outputs) from the cells below.

  python notebooks/make_walkthrough.py

Edit the cells here, not in the .ipynb, so the notebook stays reviewable as Python and is saved
without outputs. tests/test_notebook.py executes the written notebook.
"""
import pathlib

import nbformat

HERE = pathlib.Path(__file__).resolve().parent

CELLS = []


def md(text: str) -> None:
  CELLS.append(nbformat.v4.new_markdown_cell(text.strip("\n")))


def code(text: str) -> None:
  CELLS.append(nbformat.v4.new_code_cell(text.strip("\n")))


md("""
# memsr_jax walkthrough: a plain SR network from a residual teacher

This notebook runs MemSR (Wu, Lee & Ma, ICML 2022) end to end with `memsr_jax`:

1. train a small residual **teacher** (EDSR family with a 1×1 tail) with the training engine;
2. **convert** it exactly into a *plain* network (a chain of 3×3 convs, no skips) and check it;
3. **winning-initialize** a slim plain student from the teacher's features (SVD) and distill it;
4. **evaluate** teacher, student and bicubic with the SR protocol (Y-PSNR / SSIM);
5. **profile** parameters, multiply-adds and XLA's peak memory of teacher vs plain student;
6. **upscale** a photo tile by tile under a memory budget and look at the result;
7. **ship** it: export to ONNX (verified) and upscale with ONNX Runtime.

It runs in a checkout (from the repository root or below it) or anywhere memsr_jax is installed.
In a fresh Colab runtime the first cell installs the package from `REPO_URL` (set it there to the
repository's address, or to a fork). On a CPU it picks tiny settings and finishes in a few
minutes; on a GPU/TPU it trains longer. Set
`MEMSR_NB_TINY=1` (or `0`) to force the tiny (or the big) settings, and
`MEMSR_NB_WORKDIR=/some/dir` to choose where checkpoints and images go (default: a fresh temporary
folder, removed at the end). Numbers from the tiny settings only show that the machinery works;
they are not the paper's results (see `docs/MEMSR.md`). Rerunning with the same
`MEMSR_NB_WORKDIR` resumes: finished training stages are loaded, not retrained.
""")

code(r'''
# Setup: use the checkout this runs in, else the installed package, else install it from REPO_URL.
import importlib.util
import os
import pathlib
import subprocess
import sys

# Where a runtime without memsr_jax (a fresh Colab) installs it from: set this to the repository's
# address (README, "Colab"), or set $MEMSR_REPO_URL.
REPO_URL = os.environ.get("MEMSR_REPO_URL", "https://github.com/OWNER/memsr_jax")


def find_repo_root(start: pathlib.Path):
  """The checkout at or above `start` (None outside one)."""
  for p in [start, *start.parents]:
    if (p / "memsr_jax").is_dir() and (p / "requirements.txt").is_file():
      return p
  return None


REPO = find_repo_root(pathlib.Path.cwd().resolve())
if REPO is None:  # no checkout: the installed package
  if importlib.util.find_spec("memsr_jax") is None:
    if "/OWNER/" in REPO_URL:
      raise RuntimeError("memsr_jax is not installed here: set REPO_URL in this cell to the "
                         "repository's address (or open the notebook inside a checkout)")
    print(f"installing memsr_jax from {REPO_URL} ...")
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q",
                           f"memsr_jax @ git+{REPO_URL}"])
  import memsr_jax
  print("memsr_jax installed at", pathlib.Path(memsr_jax.__file__).parent)
else:
  os.chdir(REPO)
  if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
  print("repo root:", REPO)

NEEDED = ("jax", "flax", "optax", "orbax", "grain", "ml_collections", "skimage", "matplotlib",
          "psutil", "tensorflow_datasets")
missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
if missing and REPO is not None:  # e.g. a checkout uploaded to a fresh Colab runtime
  reqs = [r.split("#")[0].strip() for r in (REPO / "requirements.txt").read_text().splitlines()]
  reqs = [r for r in reqs if r]
  if "jax" not in missing:  # keep the runtime's own jax (Colab's has its GPU/TPU support)
    reqs = [r for r in reqs if not r.startswith(("jax==", "jaxlib=="))]
  print("installing requirements (missing: " + ", ".join(missing) + ") ...")
  subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", *reqs])
''')

code(r'''
import json
import shutil
import tempfile
import time
import warnings

from absl import logging as absl_logging
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from memsr_jax import evaluation
from memsr_jax.utils import pytrees
from memsr_jax.data import folders
from memsr_jax.deploy import upscaler
from memsr_jax.image import bicubic
from memsr_jax.image import io as image_io
from memsr_jax.image import metrics
from memsr_jax.measure import cost
from memsr_jax.methods.memsr import convert
from memsr_jax.methods.memsr import stages as memsr_stages
from memsr_jax import checkpoints as ckpt_lib
from memsr_jax.train import config_lib
from memsr_jax.train import loop
from memsr_jax.train.supervised import SupervisedTask

absl_logging.set_verbosity(absl_logging.ERROR)  # Orbax's notes on read-only/metadata files
BACKEND = jax.default_backend()
# MEMSR_NB_TINY=1 forces the tiny settings, =0 the big ones; unset: tiny exactly on a CPU.
TINY = {"1": True, "0": False}.get(os.environ.get("MEMSR_NB_TINY", ""), BACKEND == "cpu")
print(f"backend: {BACKEND}, devices: {jax.devices()}")
print("settings:", "TINY (CPU-sized)" if TINY else "accelerator-sized")

# Everything that changes between the tiny (CPU) and the accelerator run.
S = dict(
    scale=2,
    teacher_feats=16 if TINY else 32,      # teacher width
    teacher_blocks=2 if TINY else 4,       # residual blocks
    student_width=12 if TINY else 24,      # plain student width (Plain-S: 64, teacher 64 wide)
    lr_patch=24 if TINY else 48,
    batch=8 if TINY else 16,
    teacher_steps=200 if TINY else 3000,
    student_steps=120 if TINY else 1500,
    n_patches=8 if TINY else 16,           # LR patches whose teacher features drive the SVDs
    profile_hr=(256, 256) if TINY else (1280, 720),   # HR output size (W, H) for the cost table
)
# On a CPU small enough that the 225×150 LR photo of step 6 needs several tiles (about 40 MB
# untiled); accelerators add per-kernel workspace to XLA's estimate, so they get more room.
UPSCALE_BUDGET = "24MB" if BACKEND == "cpu" else "128MB"
OWN_WORKDIR = not os.environ.get("MEMSR_NB_WORKDIR")  # a temporary folder, removed at the end
WORKDIR = pathlib.Path(os.environ.get("MEMSR_NB_WORKDIR") or
                       tempfile.mkdtemp(prefix="memsr_walkthrough_"))
WORKDIR.mkdir(parents=True, exist_ok=True)
print("workdir:", WORKDIR)
SUMMARY = {"backend": BACKEND, "tiny": TINY, "settings": {k: str(v) for k, v in S.items()}}
T_START = time.perf_counter()
''')

md("""
## 1. Train a small residual teacher

The teacher is `memsr_teacher_s` (EDSR with a 1×1 conv tail, so it can become a plain net) with
fewer channels and blocks. `SupervisedTask` + `loop.train` is the same engine `train.py` uses: L1
loss, Adam, checkpoints in `WORKDIR/teacher` (rerunning the cell resumes or skips). The training
images are `skimage_train`, photos bundled with scikit-image (no download).
""")

code(r'''
tc = config_lib.base_config()
tc.scale = S["scale"]
tc.model.name = "memsr_teacher_s"
tc.model.kwargs.n_feats = S["teacher_feats"]
tc.model.kwargs.n_resblocks = S["teacher_blocks"]
tc.data.dataset = "skimage_train"
tc.data.lr_patch = S["lr_patch"]
tc.data.batch_size = S["batch"]
tc.val.dataset = ""                      # we evaluate in step 4
tc.total_steps = S["teacher_steps"]
tc.schedule.name = "one_cycle"
tc.schedule.lr = 2e-3 if TINY else 1e-3
tc.log_every = max(10, tc.total_steps // 4)
tc.ckpt_every = tc.total_steps
tc.progress = False
tc.tensorboard = False

t0 = time.perf_counter()
teacher_task = SupervisedTask(tc)
teacher_params, _ = loop.train(tc, WORKDIR, teacher_task, stage_name="teacher")
teacher = teacher_task.model
print(f"teacher: {pytrees.count_params(teacher_params):,} params, "
      f"trained {tc.total_steps} steps in {time.perf_counter() - t0:.1f} s")
''')

md("""
## 2. Convert the teacher into a plain network

`convert.convert` rewrites every skip connection as extra channels carried through the 3×3 convs
(offset by a constant C so a ReLU lets them pass), giving a `PlainNet` that computes the same
function. We check it on a real LR image. The literal plain net differs from the teacher only by
float32 rounding of the +C copies (up to ≈1e-3 on the 0..255 scale); the offset-folded form
(`fold_offsets`: the same network with the C terms moved into the biases) is as close as float32
allows (≈1e-4 here, about as far as the fp32 residual teacher is from its own float64 value).
""")

code(r'''
val_pairs = {p.name: p for p in folders.list_pairs("skimage_val", None, S["scale"])}
lr_full, hr_full = folders.load_pair(val_pairs["chelsea"], S["scale"])  # HR, MATLAB-bicubic LR
x = jnp.asarray(lr_full[None], jnp.float32)

plain_teacher, plain_teacher_params = convert.convert(teacher, teacher_params)
spec = convert.teacher_spec(teacher)
folded = convert.fold_offsets(spec, plain_teacher_params)
with jax.default_matmul_precision("highest"):  # full fp32 on GPUs too (no TF32 in the reference)
  ref = teacher.apply({"params": teacher_params}, x)
  out_plain = plain_teacher.apply({"params": plain_teacher_params}, x)
  out_folded = convert.apply_folded(spec, folded, x)
diff_plain = float(jnp.max(jnp.abs(out_plain - ref)))
diff_folded = float(jnp.max(jnp.abs(out_folded - ref)))
print(f"plain teacher widths: {list(plain_teacher.widths)}")
print(f"  {plain_teacher.n_layers} 3×3 convs + 1×1 tail, no skips")
print(f"on the {lr_full.shape[1]}×{lr_full.shape[0]} chelsea LR image (0..255 scale):")
print(f"max |plain - residual|  = {diff_plain:.2e}")
print(f"max |folded - residual| = {diff_folded:.2e}")
SUMMARY["convert_max_abs_diff"] = diff_plain
SUMMARY["convert_folded_max_abs_diff"] = diff_folded
''')

md("""
## 3. Winning initialization and distillation of a slim plain student

`memsr_stages.run` is what `memsr-train --config memsr/quick` runs. Given our trained
teacher (`teacher_checkpoint`), it (a) converts it, (b) builds the student layer by layer from the
SVD of the teacher's features on a few training patches (the *winning initialization*: each
student layer plus a 1×1 *bridge* reproduces the teacher's layer as closely as the width allows),
and (c) trains the student with L1 plus the bridged feature-distillation loss. Stages land in
`WORKDIR/memsr/{convert,init,student}` and the deployable student in `WORKDIR/memsr/model`.
""")

code(r'''
from memsr_jax.utils import config_paths  # the packaged configs, found by name

mc = config_paths.load_config("memsr/quick", "")
mc.scale = S["scale"]
mc.teacher_checkpoint = str(WORKDIR / "teacher")
mc.data.lr_patch = S["lr_patch"]
mc.data.batch_size = S["batch"]
mc.val.dataset = ""
mc.total_steps = S["student_steps"]
mc.log_every = max(10, mc.total_steps // 3)
mc.ckpt_every = mc.total_steps
mc.memsr.width = S["student_width"]
mc.memsr.n_patches = S["n_patches"]

t0 = time.perf_counter()
memsr_stages.run(mc, WORKDIR / "memsr")
print(f"MemSR stages done in {time.perf_counter() - t0:.1f} s")

init_info = json.loads((WORKDIR / "memsr/init/init.json").read_text())
print("student widths:", init_info["student_kwargs"]["widths"])
print("per-layer relative reconstruction error of the winning init (first 6):",
      [round(layer["rel_error"], 3) for layer in init_info["layers"][:6]])
student_init, student_init_params, _ = ckpt_lib.load_model_checkpoint(WORKDIR / "memsr/init/model")
student, student_params, student_meta = ckpt_lib.load_model_checkpoint(WORKDIR / "memsr")
print(f"student: {type(student).__name__}, {pytrees.count_params(student_params):,} params "
      f"(teacher {pytrees.count_params(teacher_params):,})")
''')

md("""
## 4. Evaluate on `skimage_val`

`evaluation.evaluate_dataset` runs the SR protocol (mod-crop, MATLAB-bicubic LR, clip and round to
uint8, Y-channel PSNR/SSIM with a `scale`-pixel border crop) on whole images. Predict functions
are jitted once per image shape. Bicubic is the floor every SR model should beat once trained; with
the tiny CPU settings the models have seen only a few hundred small batches and stay below it.
Compare the student before and after distillation to see what the few distillation steps did.
""")

code(r'''
def jitted_predict(model, params):
  fn = jax.jit(lambda p, lr: model.apply({"params": p}, lr))
  return lambda lr: np.asarray(fn(params, jnp.asarray(lr)))


def bicubic_predict(lr):
  return bicubic.imresize_np(lr[0], scale=S["scale"])[None]


candidates = {
    "bicubic": bicubic_predict,
    "teacher (residual)": jitted_predict(teacher, teacher_params),
    "student (winning init)": jitted_predict(student_init, student_init_params),
    "student (distilled)": jitted_predict(student, student_params),
}
results = {}
for name, fn in candidates.items():
  results[name] = evaluation.evaluate_dataset(fn, "skimage_val", S["scale"], None)
print(f"skimage_val ×{S['scale']} ({results['bicubic']['n_images']} images)")
print(f"{'model':<24}{'Y-PSNR':>9}{'Y-SSIM':>9}")
for name, r in results.items():
  print(f"{name:<24}{r['psnr']:>9.2f}{r['ssim']:>9.4f}")
SUMMARY["eval"] = {k: {"psnr": v["psnr"], "ssim": v["ssim"], "n_images": v["n_images"]}
                   for k, v in results.items()}
''')

md("""
## 5. Cost: parameters, multiply-adds, peak memory

Multiply-adds are counted from the traced program (`measure.cost.model_macs`). "XLA peak" is XLA's
buffer assignment for the whole jitted forward (params + input + output + temporaries); it depends
on how XLA schedules the graph (the winning-initialized student keeps MemSR's border-exact "map"
biases, input-independent tensors that XLA may compute up front and keep alive). A plain net can
also run one layer at a time with its input buffer donated (`plain_layerwise_peak`): then only
about two feature maps are alive (the "2 maps" ideal), which is MemSR's point; a residual net must
keep its skip tensors alive across blocks. The converted plain *teacher* is wider than the residual
one (it carries the skips as channels): it exists to initialize the student, not to deploy.
""")

code(r'''
W, H = S["profile_hr"]
lr_shape = (1, H // S["scale"], W // S["scale"], 3)
x_spec = jax.ShapeDtypeStruct(lr_shape, jnp.float32)
rows = []
warnings.filterwarnings("ignore", message="Some donated buffers were not usable")
for name, model, params in [("teacher (residual)", teacher, teacher_params),
                            ("plain teacher (converted)", plain_teacher, plain_teacher_params),
                            ("plain student", student, student_params)]:
  xc, _ = cost.xla_cost(lambda p, x, m=model: m.apply({"params": p}, x), params, x_spec)
  row = {"model": name, "params": pytrees.count_params(params),
         "gmacs": cost.model_macs(model, params, lr_shape) / 1e9,
         "xla_peak_mb": xc.peak_bytes / 1e6}
  if hasattr(model, "widths"):  # plain nets: one layer at a time
    lw = cost.plain_layerwise_peak(model, params, lr_shape)
    row["layerwise_mb"] = lw["layerwise_peak_bytes"] / 1e6
    row["two_maps_mb"] = lw["two_feature_maps_bytes"] / 1e6
  rows.append(row)
print(f"one {W}×{H} output, fp32, backend {BACKEND}")
print(f"{'model':<27}{'params':>9}{'GMACs':>8}{'XLA peak MB':>13}{'layer-wise MB':>15}"
      f"{'2 maps MB':>11}")
for r in rows:
  lw = f"{r['layerwise_mb']:.1f}" if "layerwise_mb" in r else "-"
  ideal = f"{r['two_maps_mb']:.1f}" if "two_maps_mb" in r else "-"
  print(f"{r['model']:<27}{r['params']:>9,}{r['gmacs']:>8.3f}{r['xla_peak_mb']:>13.1f}{lw:>15}"
        f"{ideal:>11}")
SUMMARY["profile"] = rows
''')

md("""
## 6. Upscale a photo tile by tile under a memory budget

`deploy.upscaler.Upscaler` picks the largest tile whose estimated peak fits the budget, runs the
plain student on tiles with a halo of its receptive field (the "masked" mode: exact for plain
nets) and writes the PNG row band by row band, so the SR image never sits whole in memory. We
upscale the ×2-downscaled chelsea photo, check the tiled result against a whole-image forward, and
compare bicubic and the student next to the original.
""")

code(r'''
lr_png = WORKDIR / "chelsea_lr.png"
sr_png = WORKDIR / "chelsea_sr.png"
image_io.write_png(lr_png, lr_full)
up = upscaler.Upscaler(student, student_params, max_memory=UPSCALE_BUDGET)
res = up.upscale_file(lr_png, sr_png)
sr = image_io.read_image(sr_png)
whole = np.asarray(student.apply({"params": student_params},
                                 jnp.asarray(lr_full[None], jnp.float32)))[0]
whole_u8 = np.clip(np.round(whole), 0, 255).astype(np.uint8)
tiled_diff = int(np.max(np.abs(sr.astype(int) - whole_u8.astype(int))))
print(f"{res.lr_size} → {res.sr_size}, mode {res.mode}, tile {res.tile} LR px, "
      f"{res.n_tiles} tiles, "
      f"estimated peak {res.estimated_bytes / 1e6:.1f} MB (budget {UPSCALE_BUDGET}), "
      f"{res.seconds:.1f} s")
print(f"max |tiled - whole image| = {tiled_diff} (uint8 levels; masked tiling is exact)")
SUMMARY["upscale"] = {"tile": res.tile, "n_tiles": res.n_tiles, "mode": res.mode,
                      "estimated_bytes": res.estimated_bytes, "tiled_vs_whole_max_diff": tiled_diff}

bic = np.clip(np.round(bicubic.imresize_np(lr_full, scale=S["scale"])), 0, 255).astype(np.uint8)
y0, x0, side = 60, 160, 160  # a crop around the cat's eye
crops = {f"bicubic ({metrics.psnr(bic, hr_full, crop=S['scale']):.2f} dB)": bic,
         f"MemSR plain student ({metrics.psnr(sr, hr_full, crop=S['scale']):.2f} dB)": sr,
         "original (HR)": hr_full}
fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
for ax, (title, img) in zip(axes, crops.items()):
  ax.imshow(img[y0:y0 + side, x0:x0 + side], interpolation="nearest")
  ax.set_title(title)
  ax.axis("off")
fig.tight_layout()
fig.savefig(WORKDIR / "chelsea_crops.png", dpi=80)
plt.show()
''')

md("""
## 7. Ship it: export to ONNX and upscale with ONNX Runtime

`memsr_jax.export` traces the student with jax2onnx into an `.onnx` file (dynamic height and
width; scale, layout and receptive radius in its metadata) and refuses to write it unless ONNX
Runtime agrees with JAX at HIGHEST precision within 1e-3 on the 0..255 scale. The ONNX Runtime
backend of the upscaler then tiles it exactly ("exact" mode: windows shifted inward, cores kept).
Needs the optional `requirements-export.txt`; without it this cell says so and skips.
""")

code(r'''
import importlib.util
if not (importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("jax2onnx")):
  print("onnxruntime/jax2onnx not installed: skipping the ONNX export "
        "(pip install -r requirements-export.txt, see its header)")
else:
  import logging
  logging.getLogger("onnx_ir").setLevel(logging.ERROR)
  from memsr_jax.deploy import onnx_export
  from memsr_jax.deploy import ort_backend
  onnx_path = WORKDIR / "student.onnx"
  rep = onnx_export.export_onnx(student, student_params, {"model": student_meta.get("model")},
                                onnx_path, overwrite=True)
  print(f"exported {onnx_path.name} ({rep['bytes'] / 1e6:.2f} MB); ONNX Runtime vs JAX max "
        f"|diff| {rep['max_abs_diff']:.2g} on 0..255")
  ort_up = ort_backend.OrtUpscaler(onnx_path, max_memory=UPSCALE_BUDGET)
  ort_png = WORKDIR / "chelsea_sr_onnx.png"
  ort_res = ort_up.upscale_file(lr_png, ort_png)
  ort_sr = image_io.read_image(ort_png)
  ort_diff = int(np.max(np.abs(ort_sr.astype(int) - whole_u8.astype(int))))
  print(f"ONNX Runtime: mode {ort_res.mode}, tile {ort_res.tile}, {ort_res.n_tiles} tiles, "
        f"{ort_res.seconds:.1f} s; max |ORT tiled - JAX whole image| = {ort_diff} uint8 levels")
  SUMMARY["onnx"] = {"max_abs_diff": rep["max_abs_diff"], "n_tiles": ort_res.n_tiles,
                     "ort_tiled_vs_jax_whole_max_diff": ort_diff}
''')

md(r"""
## Where next

The same steps from the command line (`WORKDIR` is the folder printed above):

```bash
memsr-train --config memsr/quick --workdir runs/memsr_quick         # a few CPU minutes
memsr-train --config memsr/plain.py:m,x4 --workdir runs/memsr_m_x4 \
    --config.data.root=/data --config.val.root=/data                 # the paper's recipe
memsr-fetch set5 set14 sample                      # sets into the data home; photo.png here
memsr-eval --config.model.checkpoint=runs/memsr_quick --config.datasets=set5,set14
memsr-profile --models plain_m,edsr_baseline,imdn --scales 2,4
memsr-upscale --checkpoint runs/memsr_quick --input photo.png --output out/ --max_memory 256MB
memsr-export --checkpoint runs/memsr_quick --format onnx --output student.onnx
memsr-upscale --onnx student.onnx --input photo.png --output out/ --max_memory 256MB
```

In a checkout, `python train.py` / `python eval.py` are the same as `memsr-train` / `memsr-eval`.
This notebook's `WORKDIR` is a temporary folder removed by the last cell unless `MEMSR_NB_WORKDIR`
names one to keep.

Details: `docs/MEMSR.md` (method), `docs/DATA.md` (datasets), `docs/TRAINING.md` (engine),
`docs/DEPLOY.md` (tiling and memory budgets).
""")

code(r'''
SUMMARY["seconds"] = time.perf_counter() - T_START
SUMMARY["files"] = {"student_model": (WORKDIR / "memsr" / "model").is_dir(),
                    "upscaled_png": (WORKDIR / "chelsea_sr.png").is_file()}
print("SUMMARY " + json.dumps(SUMMARY, default=float))
if OWN_WORKDIR:  # the temporary folder goes; a folder named by MEMSR_NB_WORKDIR stays
  shutil.rmtree(WORKDIR, ignore_errors=True)
  print(f"walkthrough finished in {SUMMARY['seconds']:.0f} s; removed {WORKDIR}")
else:
  (WORKDIR / "walkthrough_summary.json").write_text(json.dumps(SUMMARY, indent=1, default=float))
  print(f"walkthrough finished in {SUMMARY['seconds']:.0f} s; results and summary in {WORKDIR}")
''')


def build() -> nbformat.NotebookNode:
  nb = nbformat.v4.new_notebook()
  nb.cells = CELLS
  for i, cell in enumerate(nb.cells):  # stable ids: regenerating gives the same file
    cell.id = f"cell-{i:02d}"
  nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                               "language": "python"}
  nb.metadata["language_info"] = {"name": "python"}
  nb.metadata["colab"] = {"provenance": []}
  nb.metadata["accelerator"] = "GPU"
  return nb


def main() -> None:
  nb = build()
  nbformat.validate(nb)
  path = HERE / "walkthrough.ipynb"
  nbformat.write(nb, str(path))
  print(f"wrote {path} ({len(nb.cells)} cells)")


if __name__ == "__main__":
  main()
