"""Memory budgets: parsing, tile choice, the too-small error."""
import pytest

from memsr_jax.deploy import budget
from memsr_jax.deploy import tiling
from memsr_jax.models import registry


def _tiny_plain():
  model = registry.build_model("plain", scale=2, widths=(3, 4, 4), relu=None, tail_kernel=3)
  return model, registry.random_params(model)


def _tile_fn(model, params):
  fn = tiling.make_tile_fn(model, params, "masked")
  # The RSS growth across the first compile depends on what this test process compiled before;
  # fix it so the estimates are deterministic.
  fn.compile_rss = 5_000_000
  return fn


def test_parse_memory():
  assert budget.parse_memory("256MB") == 256_000_000
  assert budget.parse_memory("1.5 GB") == 1_500_000_000
  assert budget.parse_memory("512MiB") == 512 * 2 ** 20
  assert budget.parse_memory("300000000") == 300_000_000  # bytes: no unit
  assert budget.parse_memory(1000) == 1000  # the Python API's ints are bytes
  for unitless in ("256", "1000", "999999"):  # "--max_memory 256" meant 256MB: refused
    with pytest.raises(ValueError, match=f"'{unitless}' has no unit.*e.g. {unitless}MB"):
      budget.parse_memory(unitless)
  with pytest.raises(ValueError, match="cannot read memory size"):
    budget.parse_memory("lots")


def test_tile_grows_with_budget_and_fits():
  model, params = _tiny_plain()
  fn = _tile_fn(model, params)
  halo = 3
  small = budget.choose_tile(fn, halo, 300, 400, 20e6, True)
  large = budget.choose_tile(fn, halo, 300, 400, 120e6, True)
  assert small[0] < large[0]
  assert small[1] <= 20e6 * budget.HEADROOM and large[1] <= 120e6 * budget.HEADROOM
  assert small[0] % 8 == 0 or small[0] == budget.min_tile("masked", halo)


def test_budget_too_small_names_the_minimum():
  model, params = _tiny_plain()
  fn = _tile_fn(model, params)
  with pytest.raises(budget.BudgetTooSmall, match=r"pass --max_memory (\d+)MB or more") as e:
    budget.choose_tile(fn, 3, 300, 400, 1e6, True)
  minimum = int(e.value.args[0].split("--max_memory ")[1].split("MB")[0]) * 1e6
  tile, est = budget.choose_tile(fn, 3, 300, 400, minimum, True)  # the named minimum works
  assert tile >= budget.min_tile("masked", 3)
