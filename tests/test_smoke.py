import memsr_jax


def test_version():
  assert memsr_jax.__version__.count(".") == 2


def test_every_config_file_builds():
  """Each configs/**/*.py gives a ConfigDict from get_config() with its default argument."""
  import importlib.util
  import pathlib

  import ml_collections
  files = sorted(f for f in (pathlib.Path(__file__).resolve().parents[1] / "configs").rglob("*.py")
                 if f.name != "__init__.py")  # the package marker of memsr_jax.configs
  assert len(files) >= 15
  for f in files:
    spec = importlib.util.spec_from_file_location(f"cfg_{f.stem}", f)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert isinstance(module.get_config(), ml_collections.ConfigDict), f
