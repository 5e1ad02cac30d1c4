import memsr_jax


def test_version():
  assert memsr_jax.__version__.count(".") == 2
