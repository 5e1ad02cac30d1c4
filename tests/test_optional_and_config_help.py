"""utils.optional (missing extras → one line) and utils.config_help (config keys)."""
import sys

from conftest import REPO
import pytest

from memsr_jax.utils import cli
from memsr_jax.utils import config_help
from memsr_jax.utils import optional


def test_require_returns_the_module():
  assert optional.require("json", "reading") is sys.modules["json"]


@pytest.mark.parametrize("module,extra", [("torch", "memsr_jax[torch]"),
                                          ("onnxruntime", "memsr_jax[export]"),
                                          ("jax2onnx", "memsr_jax[export]")])
def test_missing_optional_package_is_one_line_with_the_install_command(monkeypatch, capsys,
                                                                       module, extra):
  monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError

  def main(argv):
    del argv
    optional.require(module, "this command")

  rc = cli.run(main, [])
  err = capsys.readouterr().err
  assert rc == 2 and len(err.strip().splitlines()) == 1
  assert err.startswith(f"error: this command needs the Python package '{module}'")
  assert extra in err


def test_reraise_missing_only_for_optional_packages():
  with pytest.raises(optional.MissingDependency, match="memsr_jax\\[torch\\]"):
    optional.reraise_missing(ModuleNotFoundError("x", name="torch.nn"), "import")
  optional.reraise_missing(ModuleNotFoundError("x", name="numpy"), "import")  # returns


def test_config_keys_listed_with_defaults():
  text = config_help.config_keys_help(["train.py", "--config", str(REPO / "configs" /
                                                                   "quickstart.py")])
  lines = text.splitlines()
  assert "--config.KEY=VALUE" in lines[0]
  assert "  --config.model.name='edsr_mini'" in lines
  assert "  --config.total_steps=1000" in lines
  assert "  --config.data.dataset='skimage_train'" in lines


def test_config_with_argument_and_default_and_errors(tmp_path):
  cfg = tmp_path / "c.py"
  cfg.write_text("import ml_collections\n"
                 "def get_config(arg='a'):\n"
                 "  c = ml_collections.ConfigDict()\n"
                 "  c.which = arg\n  c.sub = ml_collections.ConfigDict({'x': 1.5})\n"
                 "  return c\n")
  assert "  --config.which='x4'" in config_help.config_keys_help(["--config", f"{cfg}:x4"])
  text = config_help.config_keys_help([], default=str(cfg))
  assert "  --config.which='a'" in text and "  --config.sub.x=1.5" in text
  assert "cannot list" in config_help.config_keys_help([f"--config={tmp_path}/nope.py"])
  assert "Give --config" in config_help.config_keys_help(["--help"])
