"""Shared fixtures. Tests never download anything; real data comes from ../shared when present."""
import os
import pathlib

import numpy as np
import pytest

# `pytest -n 12` on one GPU: each worker would preallocate 75 % of its memory (JAX's default) and
# all but the first would fail with out-of-memory; allocate on demand instead.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("MEMSR_SHARED", REPO.parent / "shared"))
# The data home of every command the tests run (memsr_jax/data/home.py): the shared folder, whose
# datasets/ and weights/ the loaders find there. Set explicitly: the package itself never looks
# beside the checkout.
os.environ.setdefault("MEMSR_DATA_DIR", str(SHARED))


@pytest.fixture(scope="session")
def shared_dir() -> pathlib.Path:
  """The ../shared folder (datasets/, weights/); skips the test with a reason when absent."""
  if not (SHARED / "datasets").is_dir():
    pytest.skip(f"shared data not found at {SHARED} (set MEMSR_SHARED to its path)")
  return SHARED


@pytest.fixture
def rng() -> np.random.Generator:
  return np.random.default_rng(0)


@pytest.fixture(scope="session")
def sample_image() -> np.ndarray:
  """A real photo bundled with scikit-image (RGB uint8)."""
  from skimage import data
  return data.astronaut()
