"""MemSR end to end: teacher → conversion → winning initialization → distillation.

`run(config, workdir)` (train.py calls it when config.method == "memsr") runs the stages in
`workdir/<stage>/`, each resumable and skipped when finished:
  teacher   train config.memsr.teacher (a residual EDSR-family model with a 1×1 tail) with the
            supervised task, unless config.teacher_checkpoint names a trained one.
  convert   the exact plain teacher, saved as a model checkpoint (`convert/model`) with the
            check of its output against the residual teacher in its metadata.
  init      winning initialization (float64) from config.memsr.n_patches training LR patches:
            the student (`init/model`, evaluable with eval.py) and its bridges (`init/bridges.npz`);
            per-layer widths and reconstruction errors in `init/init.json`. With
            config.memsr.init == "random" the student is Xavier-normal·√2 instead.
  student   the engine trains the student (L1 + λ·ε^α·distillation when config.memsr.distill).
  qat       with config.memsr.qat.steps > 0: quantization-aware training of the student for
            ONNX Runtime int8 (memsr_jax.train.qat), a model checkpoint `workdir/qat` with its
            trained ranges (export it with --quantize int8, no calibration).
The deployable student ends in `workdir/model` (load with load_source(workdir)).
"""
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from memsr_jax import checkpoints as ckpt_lib
from memsr_jax.inference.source import load_source
from memsr_jax.methods import common
from memsr_jax.methods.memsr import convert
from memsr_jax.methods.memsr import distill as distill_lib
from memsr_jax.methods.memsr import tasks as memsr_tasks
from memsr_jax.methods.memsr import winning_init as wi
from memsr_jax.models import registry
from memsr_jax.models.plain import param_counts
from memsr_jax.train import config_lib
from memsr_jax.train import data as data_lib
from memsr_jax.train import loop
from memsr_jax.train import qat as qat_lib
from memsr_jax.train.supervised import SupervisedTask
from memsr_jax.utils import cli
from memsr_jax.utils import jsonio
from memsr_jax.utils import precision

INITS = ("winning", "random")


# ----------------------------------------------------------------------------- stages


def stage_teacher(config, workdir: pathlib.Path):
  """(teacher model, params): from config.teacher_checkpoint or trained in workdir/teacher."""
  if config.teacher_checkpoint:
    src = load_source(config.teacher_checkpoint, scale=int(config.scale))
    common.say(f"[teacher] loaded {src.name} from {config.teacher_checkpoint}")
    convert.teacher_spec(src.model)  # fail early on unsupported teachers
    return src.model, src.params
  t = config.memsr.teacher
  kwargs = config_lib.as_dict(t.kwargs)
  model = registry.build_model(t.name, scale=config.scale, **kwargs)
  convert.teacher_spec(model)  # before spending time on training
  cfg = common.stage_config(config, {"model.name": t.name, "model.kwargs": kwargs,
                                     "total_steps": int(t.total_steps), "schedule.lr": float(t.lr)})
  params, _ = loop.train(cfg, workdir, SupervisedTask(cfg), stage_name="teacher")
  return model, params


def stage_convert(config, workdir: pathlib.Path, model, params) -> dict:
  """Saves the exact plain teacher in workdir/convert/model; returns its check figures."""
  out_dir = workdir / "convert"
  info_path = out_dir / "convert.json"
  if info_path.exists():
    return jsonio.read_json(info_path)
  spec = convert.teacher_spec(model)
  plain_model, plain_params = convert.convert(model, params, offset=config.memsr.offset)
  x = jnp.asarray(np.random.default_rng(0).uniform(0, 255, (1, 17, 19, 3)), jnp.float32)
  with precision.exact():  # the check's reference too (else TF32 on GPUs)
    ref = model.apply({"params": params}, x)
    out = plain_model.apply({"params": plain_params}, x)
  info = {"widths": list(convert.plain_widths(spec)), "relu": list(convert.plain_relu(spec)),
          "offset": float(config.memsr.offset),
          **param_counts(plain_params),
          "max_abs_diff_fp32_random_input": float(jnp.max(jnp.abs(out - ref)))}
  ckpt_lib.save_model_checkpoint(out_dir / "model", "plain",
                                 convert.plain_model_kwargs(spec), plain_params,
                                 {"method": {"memsr_stage": "convert", **info}})
  if common.is_main():
    jsonio.write_json(info_path, info)
  common.say(f"[convert] plain teacher: {len(info['widths']) - 1} 3×3 convs + 1×1 tail, "
             f"max |plain − residual| = {info['max_abs_diff_fp32_random_input']:.2e}")
  return info


def sample_lr_patches(config, n: int) -> np.ndarray:
  """n training LR patches (the first batches of the training stream with a fixed seed)."""
  seed = int(config.seed) + 12345
  cfg = common.stage_config(config, {"data.batch_size": n, "seed": seed})
  src = data_lib.make_source(cfg, local_batch_size=n, process_index=0, process_count=1)
  try:
    return np.asarray(next(src)["lr"], np.float64)
  finally:
    if hasattr(src, "close"):
      src.close()


def stage_init(config, workdir: pathlib.Path, model, params):
  """(student kwargs, student params, bridges in plain form, info) — computed once, then loaded."""
  out_dir = workdir / "init"
  m = config.memsr
  info_path = out_dir / "init.json"
  if info_path.exists():
    info = jsonio.read_json(info_path)
    student = load_source(out_dir / "model")
    z = np.load(out_dir / "bridges.npz")
    bridges = [{"kernel": z[f"k{i}"], "bias": z[f"b{i}"]} for i in range(info["n_bridges"])]
    return dict(info["student_kwargs"]), student.params, bridges, info
  spec = convert.teacher_spec(model)
  tparams = convert.convert_params(spec, params, m.offset)
  lr = sample_lr_patches(config, int(m.n_patches))
  feats = wi.teacher_feature_samples(spec, params, lr, m.offset, int(m.max_samples),
                                     seed=int(config.seed))
  kw = dict(widths=None, theta=None)
  if m.theta:
    kw["theta"] = float(m.theta)
  else:
    kw["widths"] = int(m.width)
  skw, sparams, bridges, infos = wi.winning_init(tparams, convert.plain_relu(spec), feats,
                                                 beta=float(m.beta), stat=m.shift_stat, **kw)
  skw["scale"] = spec.scale
  sparams = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float32), sparams)
  info = {"student_kwargs": jsonio.to_jsonable(skw), "n_bridges": len(bridges),
          **param_counts(sparams),
          "layers": [vars(i) for i in infos], "n_patches": int(lr.shape[0]),
          "lr_patch": list(lr.shape[1:3]), "theta": m.theta or None,
          "width": None if m.theta else int(m.width), "beta": float(m.beta),
          "shift_stat": m.shift_stat}
  ckpt_lib.save_model_checkpoint(out_dir / "model", "plain", skw, sparams,
                                 {"method": {"memsr_stage": "init", **info}})
  if jax.process_index() == 0:  # every process computed the same init; one writes it
    np.savez(out_dir / "bridges.npz", **{f"k{i}": b["kernel"] for i, b in enumerate(bridges)},
             **{f"b{i}": b["bias"] for i, b in enumerate(bridges)})
  if common.is_main():
    jsonio.write_json(info_path, info)
  common.say(f"[init] student widths {list(skw['widths'])}")
  return skw, sparams, bridges, info


def random_student(config, widths, seed: int):
  """The random-init baseline: same widths, ReLU after every conv, mean shift, vector biases."""
  kwargs = dict(scale=int(config.scale), widths=tuple(widths),
                relu=tuple([True] * (len(widths) - 1)), bias_mode="vector", tail_kernel=1,
                sub_mean=True)
  model = registry.build_model("plain", **kwargs)
  rng = jax.random.key(seed)
  params = registry.init_params(model, rng)
  params = distill_lib.xavier_relu_init(jax.random.fold_in(rng, 1), params)
  return kwargs, jax.tree_util.tree_map(np.asarray, params)


def check(config) -> None:
  """config.memsr's values (`cli.UsageError`)."""
  if "memsr" not in config:
    raise cli.UsageError("config.method='memsr' needs a config.memsr section; start from "
                         "memsr_jax.methods.memsr.config")
  m = config.memsr
  if m.init not in INITS:
    raise cli.UsageError(f"config.memsr.init must be one of {INITS}, got {m.init!r}")
  if m.shift_stat not in wi.SHIFT_STATS:
    raise cli.UsageError(f"config.memsr.shift_stat must be one of {wi.SHIFT_STATS}, "
                         f"got {m.shift_stat!r}")


def run(config, workdir) -> dict:
  """Runs (or resumes) every stage; returns the final student's {kwargs, params}."""
  check(config)
  workdir = pathlib.Path(workdir)
  m = config.memsr
  model, tparams = stage_teacher(config, workdir)
  spec = convert.teacher_spec(model)
  stage_convert(config, workdir, model, tparams)
  skw, sparams, bridges, info = stage_init(config, workdir, model, tparams)
  teacher_widths = convert.plain_widths(spec)[1:-1]
  if m.init == "winning":
    bridges = distill_lib.offset_free_bridges(bridges[:-1], spec, m.offset)
  else:
    skw, sparams = random_student(config, skw["widths"], int(config.seed) + 1)
    bridges = distill_lib.random_bridges(jax.random.key(int(config.seed) + 2),
                                         skw["widths"][1:-1], teacher_widths)
  task = memsr_tasks.MemSRDistillTask(
      skw, sparams, spec=spec, teacher_params=tparams if m.distill else None,
      bridges=bridges if m.distill else None, total_steps=int(config.total_steps),
      lam=float(m.lam), eps=float(m.eps), distill=bool(m.distill),
      metadata={"init": m.init, "distill": bool(m.distill), "widths": list(skw["widths"]),
                "theta": m.theta or None, "init_layers": info["layers"]})
  params, extras = loop.train(config, workdir, task, stage_name="student")
  name, kwargs, export = task.export(params, extras)
  ckpt_lib.save_model_checkpoint(workdir / ckpt_lib.MODEL_DIR, name, kwargs, export,
                                 {"method": {"memsr": True, "init": m.init,
                                             "distill": bool(m.distill),
                                             "widths": list(skw["widths"])}})
  stage_qat(config, workdir, name, kwargs, export)
  return {"kwargs": kwargs, "params": export}


def stage_qat(config, workdir: pathlib.Path, name: str, kwargs: dict, params) -> None:
  """`workdir/qat` from the final student when config.memsr.qat.steps > 0 (skipped when there)."""
  q = config.memsr.qat
  out = workdir / "qat"
  if int(q.steps) <= 0 or (out / "params").is_dir() and (out / "meta").is_dir():
    return
  qat_lib.run_qat(config, out, name, dict(kwargs), params, steps=int(q.steps), lr=float(q.lr),
                  train_ranges=bool(q.train_ranges), calib_batches=int(q.calib_batches),
                  batch_size=int(config.data.batch_size),
                  meta={"method": {"memsr": True, "memsr_stage": "qat"}})
  common.say(f"[qat] wrote {out}")
