"""What training writes as it goes: metrics.jsonl and TensorBoard events (the progress bar is
memsr_jax.utils.console.progress).

A resumed run rewrites metrics.jsonl up to the step it restarts from and hides later TensorBoard
events, so every step is logged once however often the run was interrupted.
"""
import json
import logging
import pathlib

from memsr_jax.utils import safe_io

log = logging.getLogger(__name__)


class MetricsWriter:
  """metrics.jsonl (one JSON object per logged step) and TensorBoard events; process 0 only.

  `start_step`: the step training (re)starts from. Rows after it (logged after the checkpoint that
  was restored, so about to be logged again) and a torn last line are dropped, so a resumed run's
  metrics.jsonl has each step once.
  """

  def __init__(self, workdir: pathlib.Path, enabled: bool, tensorboard: bool,
               start_step: int = 0):
    self.enabled = enabled
    self._jsonl = None
    self._tb = None
    if not enabled:
      return
    workdir.mkdir(parents=True, exist_ok=True)
    _truncate_metrics(workdir / "metrics.jsonl", start_step)
    self._jsonl = open(workdir / "metrics.jsonl", "a")
    if tensorboard:
      try:
        from tensorboardX import SummaryWriter  # optional dependency
        # A resumed run hides the events a killed run wrote after its last checkpoint (TensorBoard
        # drops steps ≥ purge_step of the older event files), as metrics.jsonl drops those rows.
        self._tb = SummaryWriter(str(workdir / "tb"),
                                 purge_step=start_step + 1 if start_step > 0 else None)
      except ImportError:
        log.warning("tensorboardX is not installed: no TensorBoard events")

  def write(self, step: int, metrics: dict[str, float]) -> None:
    if not self.enabled:
      return
    row = {"step": int(step), **{k: float(v) for k, v in metrics.items()}}
    self._jsonl.write(json.dumps(row) + "\n")
    self._jsonl.flush()
    if self._tb is not None:
      for k, v in metrics.items():
        self._tb.add_scalar(k, float(v), int(step))
      self._tb.flush()

  def close(self) -> None:
    if self._jsonl is not None:
      self._jsonl.close()
    if self._tb is not None:
      self._tb.close()


def _truncate_metrics(path: pathlib.Path, start_step: int) -> None:
  """Keeps the rows of metrics.jsonl up to `start_step` (rewritten atomically)."""
  if not path.is_file():
    return
  keep, changed = [], False
  for line in path.read_text().splitlines():
    try:
      ok = int(json.loads(line)["step"]) <= start_step
    except (ValueError, KeyError, TypeError):  # a line torn by a kill
      ok = False
    if ok:
      keep.append(line)
    changed |= not ok
  if changed:
    safe_io.atomic_write_text(path, "".join(l + "\n" for l in keep))
