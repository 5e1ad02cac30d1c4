"""The package's version and its config files."""
import importlib.util
import pathlib
import tomllib

import ml_collections
import pytest

import memsr_jax
from memsr_jax import methods
from memsr_jax.utils import cli

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_version_matches_the_package_metadata():
  """The version the code reports (checkpoints, exports) is the one pyproject.toml publishes."""
  project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
  if "version" in project:
    assert memsr_jax.__version__ == project["version"]
  else:  # a dynamic version must be read from the attribute
    assert "version" in project.get("dynamic", [])


def _load(path: pathlib.Path):
  spec = importlib.util.spec_from_file_location(f"cfg_{path.parent.name}_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _training_config_files() -> list[pathlib.Path]:
  return sorted(f for f in (REPO / "configs").rglob("*.py")
                if f.name != "__init__.py"  # the package marker of memsr_jax.configs
                and f != REPO / "configs" / "eval.py")  # eval.py's config: tested with eval


def test_every_config_file_builds_and_validates():
  """Each training config gives a ConfigDict from get_config() with its default argument, and
  passes the checks train.py runs before training (engine keys and values, method, top level)."""
  files = _training_config_files()
  assert len(files) >= 15
  for f in files:
    config = _load(f).get_config()
    assert isinstance(config, ml_collections.ConfigDict), f
    methods.validate(config)


@pytest.mark.parametrize("section,key", [("optim", "lrr"), (None, "log_evry"), (None, "mssr")])
def test_a_misspelled_config_key_is_refused(section, key):
  """A key the engine and the method do not know fails validation, naming it."""
  config = _load(REPO / "configs" / "quickstart.py").get_config()
  methods.validate(config)
  target = config if section is None else config[section]
  with config.unlocked() if section is None else target.unlocked():
    target[key] = 1.0
  with pytest.raises(ValueError, match=key):
    methods.validate(config)
  if section is None:  # the method's own section belongs to that method only
    with pytest.raises(cli.UsageError, match="for method 'supervised'"):
      methods.validate(config)
