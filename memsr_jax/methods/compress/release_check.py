"""The paper configs against the authors' released option files, value by value.

The release (Pikapi22/SRModelCompression, BasicSR option files) is read with `yaml.safe_load`;
each value our paper configs (configs/compress/{edsr,swinir}_x2.py) claim to follow is looked up
there and in the built config, and gets one status:
  same        equal values
  equivalent  another spelling of the same computation (EQUIVALENT says why)
  deviation   a known difference with its reason (DEVIATIONS)
  differs     an undocumented difference: a bug in a config, or a release file that changed
  missing     the release files do not hold the value
A documented row names the release value and ours it was written for, so a change on either side
turns it into "differs". Values that BasicSR sets in code rather than in the option files come
from CODE. The tables live in release_deviations.py (docs/COMPRESS.md prints them).
"""
import dataclasses
import importlib.util
import pathlib
from typing import Any, Callable

import yaml

from memsr_jax.data import home
from memsr_jax.interop import option_files
from memsr_jax.methods.compress.release_deviations import CODE
from memsr_jax.methods.compress.release_deviations import DEVIATIONS
from memsr_jax.methods.compress.release_deviations import EMA_WARMUP_OURS
from memsr_jax.methods.compress.release_deviations import EQUIVALENT
from memsr_jax.models import registry
from memsr_jax.train import config_lib
from memsr_jax.utils import cli
from memsr_jax.utils import config_paths
from memsr_jax.utils import console

MISSING = "<missing>"
STATUSES = ("same", "equivalent", "deviation", "differs", "missing")
FAILING = ("differs", "missing")

# The release's files per paper config: prune, distill, test of the student.
RELEASE_FILES = {
    "edsr_baseline": {"prune": "options/train/EDSR/prune_EDSR_Mx2.yml",
                      "distill": "options/train/EDSR/distill_EDSR_Minix2_KD.yml",
                      "test": "options/test/EDSR/test_EDSR_Minix2.yml"},
    "swinir_s": {"prune": "options/train/SwinIR/prune_SwinIRlight_SRx2.yml",
                 "distill": "options/train/SwinIR/distill_SwinIRmini_SRx2_scratch_kd.yml",
                 "test": "options/test/SwinIR/test_SwinIR_minix2.yml"},
}
PAPER_CONFIGS = {"edsr_baseline": "compress/edsr_x2.py", "swinir_s": "compress/swinir_x2.py"}

@dataclasses.dataclass
class Key:
  """One compared value: `release(files)` and `ours(config)` (either may return MISSING)."""
  name: str
  release: Callable[[dict], Any]
  ours: Callable[[Any], Any]


def _at(phase: str, path: str, default=MISSING) -> Callable[[dict], Any]:
  """A release value: files[phase] followed along the dotted path."""

  def get(files):
    node = files[phase]
    for part in path.split("."):
      if not isinstance(node, dict) or part not in node:
        return default
      node = node[part]
    return node

  return get


def _const(value) -> Callable[[Any], Any]:
  return lambda _: value


def _stage(config, phase: str, path: str):
  """Our value of `group.key` for a stage: the stage's override, else the base config's."""
  section = config.compress[phase]
  group, key = path.split(".")
  if group in section and key in section[group]:
    return section[group][key]
  return config[group][key]


def _schedule_milestones(config, phase: str):
  if _stage(config, phase, "schedule.name") == "constant":
    return ()
  return tuple(_stage(config, phase, "schedule.milestones"))


def _release_milestones(phase: str):
  return lambda f: tuple(_at(phase, "train.scheduler.milestones", None)(f) or ())


def _model(config):
  """The model to compress, as built (its fields include the class defaults)."""
  kw = config_lib.as_dict(config.model.get("kwargs"))
  return registry.build_model(config.model.name, scale=config.scale, **kw)


def _student(config):
  s = config.compress.shrink
  return registry.build_model(s.student, scale=config.scale,
                              **config_lib.as_dict(s.get("student_kwargs")))


def _lr_patch(config, phase: str) -> int:
  return int(_stage(config, phase, "data.lr_patch")) * config.scale


def _ema(config, phase: str) -> float:
  return float(_stage(config, phase, "optim.ema_decay"))


def _ema_warmup(config, phase: str) -> str:
  return EMA_WARMUP_OURS if _stage(config, phase, "optim.ema_warmup") else CODE["ema_warmup"]


def _net_keys(prefix: str, phase: str, node: str, kwargs_of, model: str,
              runs_in_train_mode: bool = True) -> list[Key]:
  """The architecture of one network (`node` in the release file) against our preset's fields;
  stochastic depth only where the release runs the network in train mode."""
  if model == "edsr_baseline":
    pairs = (("num_feat", "n_feats"), ("num_block", "n_resblocks"), ("res_scale", "res_scale"),
             ("upscale", "scale"))
    keys = [Key(f"{prefix}.{a}", _at(phase, f"{node}.{a}"),
                lambda c, b=b: getattr(kwargs_of(c), b)) for a, b in pairs]
    keys.append(Key(f"{prefix}.rgb_mean", _at(phase, f"{node}.rgb_mean"),
                    lambda c: [round(v / 255.0, 6) for v in kwargs_of(c).rgb_mean]))
    return keys
  pairs = (("embed_dim", "embed_dim"), ("depths", "depths"), ("num_heads", "num_heads"),
           ("window_size", "window_size"), ("mlp_ratio", "mlp_ratio"),
           ("upsampler", "upsampler"), ("img_range", "img_range"), ("upscale", "scale"))
  keys = [Key(f"{prefix}.{a}", _at(phase, f"{node}.{a}"), lambda c, b=b: getattr(kwargs_of(c), b))
          for a, b in pairs]
  if not runs_in_train_mode:
    return keys
  # Trained deterministically: the model is applied without a dropout rng (tasks.py).
  keys.append(Key(f"{prefix}.drop_path_rate",
                  _at(phase, f"{node}.drop_path_rate", CODE["swinir_drop_path_rate"]),
                  _const(0.0)))
  return keys


def _phase_keys(phase: str, model: str) -> list[Key]:
  """Optimizer, schedule, EMA, data and seed of the prune or distill phase."""
  t = "train"
  keys = [
      Key(f"{phase}.total_iter", _at(phase, f"{t}.total_iter"),
          lambda c: c.compress[phase].total_steps),
      Key(f"{phase}.lr", _at(phase, f"{t}.optim_g.lr"),
          lambda c: _stage(c, phase, "schedule.lr")),
      Key(f"{phase}.scheduler.milestones", _release_milestones(phase),
          lambda c: _schedule_milestones(c, phase)),
      Key(f"{phase}.scheduler.gamma", _at(phase, f"{t}.scheduler.gamma"),
          lambda c: _stage(c, phase, "schedule.gamma")),
      Key(f"{phase}.ema_decay", _at(phase, f"{t}.ema_decay"), lambda c: _ema(c, phase)),
      Key(f"{phase}.ema_warmup", _const(CODE["ema_warmup"]), lambda c: _ema_warmup(c, phase)),
      Key(f"{phase}.gt_size", _at(phase, "datasets.train.gt_size"),
          lambda c: _lr_patch(c, phase)),
      Key(f"{phase}.batch_size", _at(phase, "datasets.train.batch_size_per_gpu"),
          lambda c: _stage(c, phase, "data.batch_size")),
      Key(f"{phase}.augment", lambda f: (_at(phase, "datasets.train.use_hflip")(f),
                                          _at(phase, "datasets.train.use_rot")(f)),
          _const(("h-flip", "v-flip", "transpose"))),
      Key(f"{phase}.data", _at(phase, "datasets.train.dataroot_gt"),
          lambda c: _stage(c, phase, "data.dataset")),
      Key(f"{phase}.manual_seed", _at(phase, "manual_seed"), lambda c: c.seed),
  ]
  if phase == "prune":
    keys += [
        Key("prune.optimizer", _at(phase, f"{t}.optim_g.type"),
            lambda c: _stage(c, "prune", "optim.name")),
        Key("prune.lambda_", _at(phase, f"{t}.optim_g.lambda_"), lambda c: c.compress.prune.l1),
        Key("prune.loss", _at(phase, f"{t}.pixel_opt.type"),
            _const("CharbonnierLoss")),  # tasks.PruneTask's loss
        Key("prune.loss.weight", _at(phase, f"{t}.pixel_opt.loss_weight"), _const(1.0)),
        Key("prune.loss.eps", _at(phase, f"{t}.pixel_opt.eps", CODE["charbonnier_eps"]),
            lambda c: c.compress.prune.charbonnier_eps),
        Key("prune.pruned_params", _const(CODE["pruned_params"]),
            lambda c: f"include {c.compress.prune.include} exclude {c.compress.prune.exclude}"),
    ]
  else:
    d = lambda c: c.compress.distill  # noqa: E731
    keys += [
        Key("distill.optimizer", _at(phase, f"{t}.optim_g.type"),
            lambda c: {"adam": "Adam"}.get(_stage(c, phase, "optim.name"))),
        Key("distill.betas", _at(phase, f"{t}.optim_g.betas"),
            lambda c: [_stage(c, phase, "optim.b1"), _stage(c, phase, "optim.b2")]),
        Key("distill.weight_decay", _at(phase, f"{t}.optim_g.weight_decay"),
            lambda c: _stage(c, phase, "optim.weight_decay")),
        Key("distill.dis_opt", _at(phase, f"{t}.dis_opt.type"),
            lambda c: "MultiLapLoss" if d(c).pyramid == "release" else d(c).pyramid),
        Key("distill.dis_opt.loss_weight", _at(phase, f"{t}.dis_opt.loss_weight"), _const(1.0)),
        Key("distill.dis_opt.levels", _const(CODE["lap_levels"]), lambda c: d(c).levels),
        Key("distill.dis_opt.level_weights", _const(CODE["lap_level_weights"]),
            lambda c: f"{d(c).level_weight_base:g}^i"),
        Key("distill.stu_opt", _at(phase, f"{t}.stu_opt.type"), _const("L1Loss")),
        Key("distill.stu_opt.loss_weight", _at(phase, f"{t}.stu_opt.loss_weight"),
            lambda c: d(c).alpha),
        Key("distill.teacher_mode", _const(CODE["teacher_mode"]), _const("deterministic")),
    ]
  return keys


def keys_for(model: str) -> list[Key]:
  """Every compared value of one paper config."""
  keys = _phase_keys("prune", model) + _phase_keys("distill", model)
  keys += _net_keys("model", "prune", "network_g", _model, model)
  keys += _net_keys("teacher", "distill", "tea_network_g", _model, model)
  keys += _net_keys("student", "distill", "network_g", _student, model)
  keys += _net_keys("test_student", "test", "network_g", _student, model,
                    runs_in_train_mode=False)
  keys += [
      Key("eval.weights", _at("test", "path.param_key_g", CODE["param_key"]),
          lambda c: "params_ema" if _ema(c, "distill") > 0 else "params"),
      Key("eval.crop_border", _at("test", "val.metrics.psnr.crop_border"), lambda c: c.scale),
      Key("eval.test_y_channel", _at("test", "val.metrics.psnr.test_y_channel"),
          _const(True)),  # the evaluation protocol: Y channel, border = scale
  ]
  return keys


class ReleaseError(ValueError):
  """The release folder or one of its files cannot be read."""


def load_release(release_dir, model: str) -> dict:
  """{phase: parsed option file} of one paper config's release files."""
  root = pathlib.Path(release_dir)
  files = {}
  for phase, rel in RELEASE_FILES[model].items():
    path = root / rel
    try:
      files[phase] = option_files.parse_yaml(path.read_text(encoding="utf-8"))
    except OSError as e:
      raise ReleaseError(f"cannot read release file {path}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
      raise ReleaseError(f"release file {path} is not UTF-8 text (byte {e.object[e.start]:#04x} "
                         f"at offset {e.start})") from None
    except option_files.YAMLLimitError as e:
      raise ReleaseError(f"release file {path}: {e}") from None
    except yaml.YAMLError as e:
      raise ReleaseError(f"release file {path} is not valid YAML: {e}") from None
    if not isinstance(files[phase], dict):
      raise ReleaseError(f"release file {path} holds no option mapping")
  return files


def _norm(v):
  if isinstance(v, (list, tuple)):
    return tuple(_norm(x) for x in v)
  if isinstance(v, bool) or v is None or isinstance(v, str):
    return v
  if isinstance(v, (int, float)):
    return float(v)
  return v


def same(a, b) -> bool:
  a, b = _norm(a), _norm(b)
  if isinstance(a, float) and isinstance(b, float):
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1e-30)
  if isinstance(a, tuple) and isinstance(b, tuple):
    return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
  return a == b


def documented(table: dict, key: str, model: str):
  return table.get(f"{key}@{model}") or table.get(key)


def compare(config, files: dict, model: str) -> list[dict]:
  """One row per compared value: key, release, ours, status, why."""
  rows = []
  for k in keys_for(model):
    rel, ours = k.release(files), k.ours(config)
    status, why = "differs", ""
    if rel is MISSING or rel == MISSING:
      status = "missing"
    elif same(rel, ours):
      status = "same"
    else:
      for name, table in (("equivalent", EQUIVALENT), ("deviation", DEVIATIONS)):
        doc = documented(table, k.name, model)
        if doc and same(doc[0], rel) and same(doc[1], ours):
          status, why = name, doc[2]
          break
    rows.append({"key": k.name, "release": rel, "ours": ours, "status": status, "why": why})
  return rows


def _fmt(v) -> str:
  if isinstance(v, (list, tuple)):
    return "[" + ", ".join(map(_fmt, v)) + "]"
  return f"{v:g}" if isinstance(v, float) else str(v)


def format_text(rows: list[dict]) -> str:
  out = []
  for r in rows:
    line = (f"  {r['status']:>10}  {r['key']:<32} release={_fmt(r['release'])}  "
            f"ours={_fmt(r['ours'])}")
    out.append(line + (f"  ({r['why']})" if r["why"] else ""))
  return "\n".join(out)


def format_markdown(rows: list[dict]) -> str:
  lines = ["| key | release | ours | status |", "|---|---|---|---|"]
  for r in rows:
    status = r["status"] + (f": {r['why']}" if r["why"] else "")
    lines.append(f"| `{r['key']}` | {_fmt(r['release'])} | {_fmt(r['ours'])} | {status} |")
  return "\n".join(lines)


def failures(rows: list[dict]) -> list[str]:
  """'key: release X, ours Y' for every row that fails the check."""
  return [f"{r['key']} ({r['status']}): release {_fmt(r['release'])}, ours {_fmt(r['ours'])}"
          for r in rows if r["status"] in FAILING]


RELEASE_REPO = "https://github.com/Pikapi22/SRModelCompression"


def default_release_dir() -> pathlib.Path:
  """<data home>/release/SRModelCompression (memsr_jax/data/home.py)."""
  return home.data_home() / "release" / "SRModelCompression"


def load_config(path: pathlib.Path):
  """get_config() of a config file (a script loaded by path, as train.py's config flag does)."""
  spec = importlib.util.spec_from_file_location(f"release_check_{path.stem}", path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config()


def check(release_dir, configs_dir=None) -> dict[str, list[dict]]:
  """{paper config path: compare rows} for every paper config (found in `configs_dir`, else by
  the shared config finder, memsr_jax.utils.config_paths)."""
  release_dir = pathlib.Path(release_dir)
  if not release_dir.is_dir():
    raise ReleaseError(f"release folder {release_dir} not found: copy the folder BasicSR/options "
                       f"of {RELEASE_REPO} to {release_dir}/options, or give --release_dir")
  out = {}
  for model, rel in PAPER_CONFIGS.items():
    try:
      path = (pathlib.Path(configs_dir) / rel if configs_dir else config_paths.find_config(rel))
    except FileNotFoundError as e:
      raise ReleaseError(str(e)) from None
    if not path.is_file():
      raise ReleaseError(f"paper config {path} not found; give --configs_dir")
    out[str(path)] = compare(load_config(path), load_release(release_dir, model), model)
  return out


def main(argv=None) -> int:
  ap = cli.ArgumentParser(prog="python -m memsr_jax.release_check",
                          description=__doc__.splitlines()[0])
  ap.add_argument("--release_dir", default=None,
                  help="the release's folder holding options/ (default: <data home>/release/"
                       "SRModelCompression; the data home is $MEMSR_DATA_DIR, else "
                       "~/.cache/memsr_jax)")
  ap.add_argument("--configs_dir", default=None,
                  help="the configs folder holding compress/{edsr,swinir}_x2.py (default: the "
                       "project's, found by memsr_jax.utils.config_paths)")
  ap.add_argument("--markdown", action="store_true", help="print markdown tables")
  args = ap.parse_args(argv)
  try:
    results = check(args.release_dir or default_release_dir(), args.configs_dir)
  except ReleaseError as e:
    return cli.fail(e)
  bad = []
  for path, rows in results.items():
    model = next(m for m, rel in PAPER_CONFIGS.items() if path.endswith(rel))
    console.result(f"\n{path} vs the release ({', '.join(RELEASE_FILES[model].values())}):")
    console.result(format_markdown(rows) if args.markdown else format_text(rows))
    bad += [f"{path}: {x}" for x in failures(rows)]
  if bad:
    console.say(f"\n{len(bad)} undocumented difference(s) from the release:")
    for line in bad:
      console.say(f"  {line}")
    return 1
  return 0
