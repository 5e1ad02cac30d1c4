"""Training throughput: this project's jitted train step vs the same network in PyTorch.

  python benchmarks/train_throughput.py          # EDSR-baseline ×2 and plain-35, b16 p48
  python benchmarks/train_throughput.py --variants           # + XLA flag / layout variants
  python benchmarks/train_throughput.py --batch 4 --steps 3  # quicker, same ratios roughly
  python benchmarks/train_throughput.py --device gpu         # GPU: the precision arms below

On a GPU (`--device gpu`, or `auto` when nvidia-smi answers) one run times the arms
jax_fp32 (backend default: TF32 convs), jax_bf16 (config.dtype=bfloat16 mixed precision),
torch_fp32 (eager), torch_amp_bf16 (autocast bf16), torch_compile and torch_compile_amp_bf16 on the
same nets and batches, prints each arm's ratio to torch_fp32 and saves JSON (default
benchmarks/results/train_throughput_gpu.json). `--arms a,b` picks arms (also on CPU).

Each measurement runs in its own subprocess (XLA flags must be set before JAX starts), and JAX and
PyTorch runs alternate, so on a shared machine both see similar load: compare the *ratios*; the
absolute steps/s are noisy. Steps: Adam, L1 loss, uint8 batches converted on the device, params
donated (as in memsr_jax.train.loop). Output: a table and a JSON file (--out).
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]

MODELS = {
    # name: (registry preset, overrides); the PyTorch side is its torch_models reference.
    "edsr_baseline": ("edsr_baseline", {}),
    "plain35": ("plain", {"widths": (3,) + (64,) * 35, "tail_kernel": 3}),
}

# Variants of the JAX side: (XLA_FLAGS, options). Unknown flags make XLA abort: that is recorded.
VARIANTS = {
    "default": ("", {}),
    "no_donation": ("", {"donate": False}),
    "nchw_layout": ("", {"layout": "NCHW"}),
    "single_thread_eigen": ("--xla_cpu_multi_thread_eigen=false", {}),
    "onednn": ("--xla_cpu_use_onednn=true", {}),
    "xnnpack": ("--xla_cpu_use_xnnpack=true", {}),
    "fast_math": ("--xla_cpu_enable_fast_math=true", {}),
    "legacy_runtime": ("--xla_cpu_use_thunk_runtime=false", {}),
    "concurrency_scheduler": ("--xla_cpu_enable_concurrency_optimized_scheduler=true", {}),
}


# Precision arms: (worker, options). Ratios are reported against torch_fp32.
ARMS = {
    "jax_fp32": ("jax", {}),
    "jax_bf16": ("jax", {"dtype": "bfloat16"}),
    "torch_fp32": ("torch", {}),
    "torch_amp_bf16": ("torch", {"amp": "bfloat16"}),
    "torch_compile": ("torch", {"compile": True}),
    "torch_compile_amp_bf16": ("torch", {"compile": True, "amp": "bfloat16"}),
}


def _device_peak_jax():
  import jax
  stats = jax.local_devices()[0].memory_stats() or {}
  return stats.get("peak_bytes_in_use")


# ----------------------------------------------------------------------------- JAX worker


def _plain_nchw(widths, scale):
  """The plain net written directly with NCHW / OIHW convolutions (layout experiment)."""
  # Imports in the worker only: its XLA_FLAGS must be set before JAX starts.
  import jax
  import jax.numpy as jnp

  from memsr_jax.models.layers import DIV2K_RGB_MEAN
  from memsr_jax.models.layers import pixel_shuffle

  def init(rng):
    params = []
    dims = list(zip(widths[:-1], widths[1:])) + [(widths[-1], 3 * scale * scale)]
    for i, (cin, cout) in enumerate(dims):
      k = jax.random.normal(jax.random.fold_in(rng, i), (cout, cin, 3, 3)) * (cin * 9) ** -0.5
      params.append({"kernel": k, "bias": jnp.zeros((cout,))})
    return params

  def apply(params, x_nhwc):
    mean = jnp.asarray(DIV2K_RGB_MEAN, jnp.float32)
    h = jnp.transpose(x_nhwc - mean, (0, 3, 1, 2))
    for i, p in enumerate(params):
      h = jax.lax.conv_general_dilated(h, p["kernel"], (1, 1), "SAME",
                                       dimension_numbers=("NCHW", "OIHW", "NCHW"))
      h = h + p["bias"][None, :, None, None]
      if i < len(params) - 2:
        h = jax.nn.relu(h)
    return pixel_shuffle(jnp.transpose(h, (0, 2, 3, 1)), scale) + mean

  return init, apply


def jax_worker(args) -> dict:
  # Imports in the worker only: its XLA_FLAGS must be set before JAX starts.
  import jax
  import jax.numpy as jnp
  import numpy as np
  import optax

  from memsr_jax.models import registry
  from memsr_jax.train import state as state_lib
  from memsr_jax.train import task as task_lib

  opts = json.loads(args.options or "{}")
  preset, overrides = MODELS[args.model]
  if opts.get("layout") == "NCHW":
    if args.model != "plain35":
      return {"error": "the NCHW variant exists for plain35 only"}
    init, apply = _plain_nchw(overrides["widths"], args.scale)
  else:
    model = registry.build_model(preset, scale=args.scale, **overrides)
    init = lambda rng: registry.init_params(model, rng)
    apply = lambda p, x: model.apply({"params": p}, x)

  class Task(task_lib.Task):
    def loss_fn(self, params, extras, batch, rng, step):
      return jnp.mean(jnp.abs(apply(params, batch["lr"]) - batch["hr"])), {}

  tx = optax.adam(1e-4)
  from memsr_jax.utils import precision
  step = state_lib.make_train_step(Task(), tx, optax.constant_schedule(1e-4),
                                   compute_dtype=precision.compute_dtype(opts.get("dtype",
                                                                                  "float32")))
  donate = (0,) if opts.get("donate", True) else ()
  step = jax.jit(step, donate_argnums=donate)
  st = state_lib.create_train_state(init(jax.random.key(0)), tx)
  r = np.random.default_rng(0)
  p, s, b = args.lr_patch, args.scale, args.batch
  batch = {"lr": r.integers(0, 256, (b, p, p, 3), np.uint8),
           "hr": r.integers(0, 256, (b, p * s, p * s, 3), np.uint8)}
  batch = jax.device_put(batch)
  rng = jax.random.key(0)
  t0 = time.perf_counter()
  st, m = step(st, {}, batch, rng)
  jax.block_until_ready(m["loss"])
  compile_s = time.perf_counter() - t0
  for _ in range(args.warmup):
    st, m = step(st, {}, batch, rng)
  jax.block_until_ready(m["loss"])
  t0 = time.perf_counter()
  for _ in range(args.steps):
    st, m = step(st, {}, batch, rng)
  jax.block_until_ready(m["loss"])
  dt = time.perf_counter() - t0
  n_params = sum(x.size for x in jax.tree.leaves(st.params))
  return {"steps_per_sec": args.steps / dt, "images_per_sec": args.steps * b / dt,
          "first_step_s": compile_s, "n_params": int(n_params), "jax": jax.__version__,
          "loss": float(m["loss"]), "backend": jax.default_backend(),
          "dtype": opts.get("dtype", "float32"), "device_peak_bytes": _device_peak_jax()}


# ----------------------------------------------------------------------------- PyTorch worker


def _torch_model(name: str, scale: int):
  """The network of MODELS[name] as its PyTorch reference (memsr_jax.interop.torch_models), with
  random weights (registry.random_params), in training mode."""
  # JAX only traces the params' shapes here: on the CPU, so a GPU run leaves the GPU to torch.
  os.environ["JAX_PLATFORMS"] = "cpu"
  from memsr_jax.measure import torch_bench
  from memsr_jax.models import registry
  preset, overrides = MODELS[name]
  model = registry.build_model(preset, scale=scale, **overrides)
  return torch_bench.build_torch(model, registry.random_params(model)).train()


def torch_worker(args) -> dict:
  import numpy as np
  import torch
  torch.manual_seed(0)
  opts = json.loads(args.options or "{}")
  dev = torch.device("cuda" if opts.get("device") == "gpu" else "cpu")
  model = _torch_model(args.model, args.scale).to(dev)
  amp = opts.get("amp") == "bfloat16"
  fwd = torch.compile(model) if opts.get("compile") else model
  channels_last = opts.get("channels_last", False)
  if channels_last:
    model = model.to(memory_format=torch.channels_last)
  opt = torch.optim.Adam(model.parameters(), 1e-4)
  r = np.random.default_rng(0)
  p, s, b = args.lr_patch, args.scale, args.batch
  lr_u8 = torch.from_numpy(r.integers(0, 256, (b, 3, p, p), np.uint8)).to(dev)
  hr_u8 = torch.from_numpy(r.integers(0, 256, (b, 3, p * s, p * s), np.uint8)).to(dev)
  sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

  def step():
    lr, hr = lr_u8.float(), hr_u8.float()
    if channels_last:
      lr = lr.contiguous(memory_format=torch.channels_last)
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):  # AMP: bf16 convs
      loss = (fwd(lr).float() - hr).abs().mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss

  t0 = time.perf_counter()
  step()
  sync()
  first = time.perf_counter() - t0
  for _ in range(args.warmup):
    step()
  sync()
  t0 = time.perf_counter()
  for _ in range(args.steps):
    loss = step()
  sync()
  dt = time.perf_counter() - t0
  out = {"steps_per_sec": args.steps / dt, "images_per_sec": args.steps * b / dt,
         "first_step_s": first, "threads": torch.get_num_threads(), "torch": torch.__version__,
         "n_params": int(sum(p.numel() for p in model.parameters() if p.requires_grad)),
         "loss": float(loss),
         "device": dev.type, "amp": opts.get("amp"), "compile": bool(opts.get("compile"))}
  if dev.type == "cuda":
    out.update(device_peak_bytes=int(torch.cuda.max_memory_allocated()),
               cudnn_allow_tf32=bool(torch.backends.cudnn.allow_tf32))
  return out


# ----------------------------------------------------------------------------- driver


def run_worker(kind: str, args, model: str, xla_flags: str = "", options: dict | None = None
               ) -> dict:
  cmd = [sys.executable, __file__, "--worker", kind, "--model", model, "--batch", str(args.batch),
         "--lr_patch", str(args.lr_patch), "--scale", str(args.scale), "--steps", str(args.steps),
         "--warmup", str(args.warmup), "--options", json.dumps(options or {})]
  env = dict(os.environ, PYTHONPATH=str(REPO))
  if (options or {}).get("device") != "gpu":
    env["JAX_PLATFORMS"] = "cpu"
  env["XLA_FLAGS"] = " ".join(f for f in (os.environ.get("XLA_FLAGS", ""), xla_flags) if f)
  proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
  lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
  if proc.returncode != 0 or not lines:
    return {"error": (proc.stderr or proc.stdout)[-500:].strip(), "returncode": proc.returncode}
  return json.loads(lines[-1])


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--worker", choices=("jax", "torch"))
  ap.add_argument("--model", default="edsr_baseline,plain35")
  ap.add_argument("--batch", type=int, default=16)
  ap.add_argument("--lr_patch", type=int, default=48)
  ap.add_argument("--scale", type=int, default=2)
  ap.add_argument("--steps", type=int, default=5)
  ap.add_argument("--warmup", type=int, default=1)
  ap.add_argument("--repeats", type=int, default=2, help="alternating JAX/PyTorch rounds")
  ap.add_argument("--variants", nargs="?", const="all", default="",
                  help="also time JAX variants (comma list of %s, or all)" % ", ".join(VARIANTS))
  ap.add_argument("--torch_channels_last", action="store_true")
  ap.add_argument("--options", default="")
  ap.add_argument("--timeout", type=int, default=1800)
  ap.add_argument("--out", default=None, help="JSON path (default: benchmarks/results/"
                  "train_throughput.json, or train_throughput_gpu.json on a GPU)")
  ap.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
  ap.add_argument("--arms", default=None,
                  help="comma list of %s (default: all on a GPU, none on CPU)" % ", ".join(ARMS))
  args = ap.parse_args()
  if not args.worker:
    args.device = _resolve_device(args.device)
    args.out = args.out or ("benchmarks/results/train_throughput" +
                            ("_gpu" if args.device == "gpu" else "") + ".json")

  if args.worker:
    fn = jax_worker if args.worker == "jax" else torch_worker
    print(json.dumps(fn(args)), flush=True)
    return

  try:
    import torch  # noqa: F401
    have_torch = True
  except ImportError:
    have_torch = False
  if args.device == "gpu" or args.arms:
    return run_arms(args, have_torch)
  variants = [] if not args.variants else (
      [v for v in VARIANTS if v != "default"] if args.variants == "all"
      else args.variants.split(","))
  results = {"machine": {"cpus": os.cpu_count(), "load_avg_start": os.getloadavg()},
             "settings": {k: getattr(args, k) for k in ("batch", "lr_patch", "scale", "steps",
                                                        "warmup", "repeats")},
             "note": "shared machine: absolute numbers are noisy; JAX and PyTorch runs alternate, "
                     "compare ratios", "models": {}}
  for model in args.model.split(","):
    rows = {"jax": [], "torch": [], "variants": {}}
    for _ in range(args.repeats):
      rows["jax"].append(run_worker("jax", args, model))
      if have_torch:
        rows["torch"].append(run_worker("torch", args, model, options={
            "channels_last": args.torch_channels_last}))
    for v in variants:
      flags_, opts = VARIANTS[v]
      # Each variant is timed next to a default run, so its ratio sees the same load.
      rows["variants"][v] = {"variant": run_worker("jax", args, model, flags_, opts),
                             "default": run_worker("jax", args, model),
                             "xla_flags": flags_, "options": opts}
    summary = _summarize(rows)
    results["models"][model] = {"runs": rows, "summary": summary}
    _print_model(model, summary)
  results["machine"]["load_avg_end"] = os.getloadavg()
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(results, indent=1))
  print(f"saved {out}")


def _resolve_device(device: str) -> str:
  if device != "auto":
    return device
  import shutil
  if shutil.which("nvidia-smi"):
    ok = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    if ok.returncode == 0 and "GPU" in ok.stdout:
      return "gpu"
  return "cpu"


def run_arms(args, have_torch: bool) -> None:
  """The precision arms, alternating per round, on the same nets and batches; ratio table + JSON."""
  arms = (args.arms.split(",") if args.arms else list(ARMS))
  unknown = [a for a in arms if a not in ARMS]
  if unknown:
    raise SystemExit(f"unknown arm(s) {unknown}; choose from {list(ARMS)}")
  if not have_torch:
    arms = [a for a in arms if ARMS[a][0] != "torch"]
  results = {"machine": {"cpus": os.cpu_count(), "device": args.device,
                         "load_avg_start": os.getloadavg()},
             "settings": {k: getattr(args, k) for k in ("batch", "lr_patch", "scale", "steps",
                                                        "warmup", "repeats")},
             "arms": {a: {"worker": ARMS[a][0], **ARMS[a][1]} for a in arms}, "models": {}}
  for model in args.model.split(","):
    runs = {a: [] for a in arms}
    for _ in range(args.repeats):
      for a in arms:
        kind, opts = ARMS[a]
        runs[a].append(run_worker(kind, args, model, options=dict(opts, device=args.device)))
    base = _median(runs.get("torch_fp32", []))
    summary = {a: {"steps_per_sec": _median(r), "images_per_sec": _median(r, "images_per_sec"),
                   "device_peak_bytes": _median(r, "device_peak_bytes"),
                   "ratio_vs_torch_fp32": (_median(r) / base) if (base and _median(r)) else None,
                   "errors": [x["error"][-200:] for x in r if "error" in x]}
               for a, r in runs.items()}
    results["models"][model] = {"runs": runs, "summary": summary}
    fmt = lambda x, f=".3f": "n/a" if x is None else format(x, f)
    print(f"\n{model} ({args.device}, batch {args.batch}, LR patch {args.lr_patch}, ×{args.scale})")
    print(f"  {'arm':24s} {'steps/s':>9s} {'img/s':>9s} {'peak MB':>9s} {'/ torch_fp32':>12s}")
    for a, s in summary.items():
      mb = None if s["device_peak_bytes"] is None else s["device_peak_bytes"] / 1e6
      err = f"  error: {s['errors'][0][:100]!r}" if s["errors"] else ""
      print(f"  {a:24s} {fmt(s['steps_per_sec']):>9s} {fmt(s['images_per_sec'], '.1f'):>9s} "
            f"{fmt(mb, '.0f'):>9s} {fmt(s['ratio_vs_torch_fp32']):>12s}{err}")
  results["machine"]["load_avg_end"] = os.getloadavg()
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(results, indent=1))
  print(f"saved {out}")


def _median(runs, key="steps_per_sec"):
  vals = [r[key] for r in runs if r.get(key) is not None]
  return statistics.median(vals) if vals else None


def _summarize(rows) -> dict:
  j, t = _median(rows["jax"]), _median(rows["torch"])
  s = {"jax_steps_per_sec": j, "torch_steps_per_sec": t,
       "jax_images_per_sec": _median(rows["jax"], "images_per_sec"),
       "torch_images_per_sec": _median(rows["torch"], "images_per_sec"),
       "ratio_jax_over_torch": (j / t) if (j and t) else None, "variants": {}}
  for v, r in rows["variants"].items():
    a, b = r["variant"].get("steps_per_sec"), r["default"].get("steps_per_sec")
    s["variants"][v] = {"steps_per_sec": a, "default_steps_per_sec": b,
                        "speedup_vs_default": (a / b) if (a and b) else None,
                        "error": r["variant"].get("error")}
  return s


def _print_model(model, s):
  fmt = lambda x: "n/a" if x is None else f"{x:.3f}"
  print(f"\n{model}: JAX {fmt(s['jax_steps_per_sec'])} steps/s "
        f"({fmt(s['jax_images_per_sec'])} img/s) | PyTorch {fmt(s['torch_steps_per_sec'])} "
        f"steps/s ({fmt(s['torch_images_per_sec'])} img/s) | JAX/PyTorch "
        f"{fmt(s['ratio_jax_over_torch'])}")
  for v, r in s["variants"].items():
    extra = f"  error: {r['error'][:120]!r}" if r["error"] else ""
    print(f"  {v:24s} {fmt(r['steps_per_sec'])} steps/s vs default "
          f"{fmt(r['default_steps_per_sec'])}: ×{fmt(r['speedup_vs_default'])}{extra}")


if __name__ == "__main__":
  main()
