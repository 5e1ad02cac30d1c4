"""Scaffolding shared by the methods' stages: per-stage configs and process-0 JSON files."""
import json

import numpy as np
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


def test_write_json_is_atomic_and_takes_numpy_scalars(tmp_path):
  path = tmp_path / "sub" / "result.json"
  common.write_json(path, {"n": np.int64(3), "x": np.float32(0.5), "t": (1, 2)})
  assert json.loads(path.read_text()) == {"n": 3, "x": 0.5, "t": [1, 2]}
  assert not path.with_suffix(".tmp").exists()
