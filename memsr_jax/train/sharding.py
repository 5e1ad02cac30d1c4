"""Device mesh and shardings: batch split over the "data" axis, params replicated.

One mesh over every device of every process, axes ("data", "model"). Params are replicated, so
training uses a "model" axis of size 1 (config_lib.validate rejects more: those devices would only
repeat the same work).
"""
import jax
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

DATA_AXIS = "data"
MODEL_AXIS = "model"


def make_mesh(data: int = -1, model: int = 1, devices=None) -> Mesh:
  """A ("data", "model") mesh; data = -1 uses every device left after the model axis."""
  devices = list(jax.devices() if devices is None else devices)
  n = len(devices)
  if model <= 0 or n % model:
    raise ValueError(f"config.mesh.model={model} does not divide the {n} available devices")
  if data == -1:
    data = n // model
  if data * model != n:
    raise ValueError(f"config.mesh: data={data} × model={model} = {data * model} devices, but "
                     f"{n} are available; set config.mesh.data=-1 to use them all")
  return Mesh(np.asarray(devices).reshape(data, model), (DATA_AXIS, MODEL_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) dimension split over "data"."""
  return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_size(global_batch: int, mesh: Mesh) -> None:
  n_data = mesh.shape[DATA_AXIS]
  n_proc = jax.process_count()
  if global_batch % n_data:
    raise ValueError(f"config.data.batch_size={global_batch} is not divisible by the {n_data} "
                     f"data-parallel devices; use a multiple of {n_data}")
  if global_batch % n_proc:
    raise ValueError(f"config.data.batch_size={global_batch} is not divisible by the {n_proc} "
                     "processes")


def local_batch_size(global_batch: int) -> int:
  """This process's share of the global batch (each process loads its own slice)."""
  return global_batch // jax.process_count()


def shard_batch(batch: dict, mesh: Mesh) -> dict:
  """This process's NumPy batch → global jax.Arrays sharded over "data".

  Works unchanged on one process (the local batch is the global batch) and on many (each process
  contributes its rows; `make_array_from_process_local_data` assembles the global array).
  """
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in batch.items()}


def replicate(tree, mesh: Mesh):
  """Places a host pytree (identical on every process) replicated over the mesh."""
  sharding = replicated(mesh)
  return jax.tree.map(
      lambda x: jax.make_array_from_callback(np.shape(x), sharding,
                                             lambda idx: np.asarray(x)[idx]), tree)


def to_host(tree):
  """Replicated global arrays → NumPy on every process (each holds a full copy locally)."""
  def get(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      return np.asarray(x.addressable_data(0))
    return np.asarray(x)
  return jax.tree.map(get, tree)
