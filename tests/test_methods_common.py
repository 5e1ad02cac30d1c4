"""Scaffolding shared by the methods' stages: per-stage configs, process-0 writes and status."""
import jax
import pytest

from memsr_jax.methods import common
from memsr_jax.train import config_lib


def test_stage_config_copies_and_overrides():
  base = config_lib.base_config()
  base.lock()
  c = common.stage_config(base, {"total_steps": 7, "schedule.lr": 1e-3,
                                 "model.kwargs": {"n_feats": 8}})
  assert (c.total_steps, c.schedule.lr, c.model.kwargs.n_feats) == (7, 1e-3, 8)
  assert base.total_steps == 1000 and "n_feats" not in base.model.kwargs  # the original is kept
  with pytest.raises(ValueError, match=r"stage override schedule.lrr is not a config key"):
    common.stage_config(base, {"schedule.lrr": 1.0})


def test_status_lines_and_writes_come_from_process_0_only(monkeypatch, capsys):
  common.say("[stage] on process 0")
  assert common.is_main()
  monkeypatch.setattr(jax, "process_index", lambda: 1)
  common.say("[stage] on process 1")
  assert not common.is_main()
  out, err = capsys.readouterr()
  assert out == "" and err == "[stage] on process 0\n"
