"""Evaluation by the benchmark protocol (memsr_jax/evaluation/protocol.py): Y-PSNR / SSIM per
dataset and scale.

  # Bicubic baseline (the sets from `memsr-fetch set5 set14`, in the data home)
  memsr-eval
  # Official IMDN weights (one .pth per scale, `memsr-fetch imdn`; needs torch)
  memsr-eval --config.model.name=imdn --config.model.torch_weights=imdn/IMDN_x{scale}.pth \
      --config.scales=2,3,4 --config.datasets=set5,set14
  # A model trained with memsr-train (its scale is read from the checkpoint)
  memsr-eval --config.model.checkpoint=runs/quickstart --config.output_dir=eval_out/quickstart
(`python eval.py --config configs/eval.py …` in a checkout.)
"""
import ml_collections


def get_config():
  c = ml_collections.ConfigDict()

  c.model = ml_collections.ConfigDict()
  # "bicubic" (MATLAB bicubic upscaling of the LR), or a registry preset with weights from
  # `torch_weights`. With `checkpoint` set, the checkpoint names its own model.
  c.model.name = "bicubic"
  c.model.checkpoint = ""  # model checkpoint folder or training workdir (Orbax)
  c.model.torch_weights = ""  # PyTorch .pth; "{scale}" in the path is replaced by each scale
  c.model.torch_param_key = ""  # key of the state dict inside the .pth ("" = detect)
  c.model.kwargs = ml_collections.ConfigDict()  # preset overrides for torch_weights models
  # MSSR: which nested level (sub-network) to evaluate; -1 = the full model.
  c.model.level = -1
  c.model.sparsity = -1.0  # MSSR: or the level whose sparsity is nearest this (e.g. 0.94)
  c.sweep_levels = False  # MSSR: evaluate every level; prints PSNR vs sparsity vs non-zero params

  c.datasets = "set5,set14"  # comma-separated names (memsr_jax.data.folders) or folder paths
  c.scales = ""  # comma-separated; "" = the checkpoint's scale, or 2,3,4 otherwise
  # Where named datasets live; "" = the data home ($MEMSR_DATA_DIR, else ~/.cache/memsr_jax),
  # where `memsr-fetch set5 set14` puts them.
  c.data_dir = ""
  c.y_only = True  # metrics on Y (the protocol); False = on RGB
  c.use_lr_files = True  # use LR images a dataset ships (DIV2K / EDSR benchmark layouts)
  c.output_dir = "./eval_out"  # results.json, details.json, images/
  c.overwrite = False  # replace the results of an earlier evaluation in output_dir
  c.save_images = False
  # Conv/matmul precision (utils.precision): "highest" = full float32 on every backend (the
  # protocol's numbers; GPUs otherwise use TF32), "default" = the backend's fast path, "bfloat16".
  c.precision = "highest"  # write the SR PNGs to output_dir/images/<dataset>/x<scale>/
  return c
