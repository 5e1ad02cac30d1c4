"""The paper configs follow the authors' released recipe, value by value (or say why not)."""
import pytest

from memsr_jax import release_check
from memsr_jax.methods.compress import release
from memsr_jax.models import registry


@pytest.mark.parametrize("path,model", sorted(release_check.PAPER_CONFIGS.items()))
def test_paper_configs_match_the_release(path, model):
  rows = release.compare(release_check.load_config(release_check.REPO / path), model)
  assert {r["key"] for r in rows} == set(release.RELEASE[model])
  bad = [r for r in rows if r["status"] == "differs"]
  assert not bad, f"{path} differs from the release without a documented reason: {bad}"
  for r in rows:  # every deviation and equivalence carries its reason
    assert (r["status"] in ("same",)) == (r["why"] == "")


def test_an_undocumented_difference_is_reported():
  c = release_check.load_config(release_check.REPO / "configs/compress/edsr_x2.py")
  c.compress.distill.levels = 4
  c.compress.shrink.student_kwargs.res_scale = 1.0
  status = {r["key"]: r["status"] for r in release.compare(c, "edsr_baseline")}
  assert status["compress.distill.levels"] == "differs"
  assert status["student.res_scale"] == "differs"
  assert release_check.main([]) == 0  # the files themselves are still clean


def test_edsr_mini_matches_the_released_student():
  """EDSRmini: 16 ch, 8 blocks, res_scale 2 in the release's train and test configs."""
  kw = registry.model_kwargs("edsr_mini", scale=2)
  assert (kw["n_feats"], kw["n_resblocks"], kw["res_scale"]) == (16, 8, 2.0)


def test_unknown_model_is_an_error():
  with pytest.raises(ValueError, match="no released recipe"):
    release.compare(release_check.load_config(release_check.REPO / "configs/compress/edsr_x2.py"),
                    "imdn")
