"""Checkpoints, below both training and deployment (imports only models/ and the top-level
helpers):

  orbax_io     the thin layer over Orbax (quiet logs, saved-tree metadata, restore targets)
  layout       folder names inside a workdir / model folder, metadata read without Orbax
  tree_check   does a saved tree fit its target (names the mismatched leaves)
  training     TrainCheckpointer: save/restore the train state, fallback past damaged steps
  model        the deployable model artifact (save/load model checkpoint, extra items)
  errors       the user errors of all of these

The names users need are re-exported here (`from memsr_jax import checkpoints`).
"""
from memsr_jax.checkpoints.errors import CheckpointMismatchError as CheckpointMismatchError
from memsr_jax.checkpoints.errors import CheckpointNotFoundError as CheckpointNotFoundError
from memsr_jax.checkpoints.errors import CheckpointSaveError as CheckpointSaveError
from memsr_jax.checkpoints.errors import CheckpointUnreadableError as CheckpointUnreadableError
from memsr_jax.checkpoints.layout import CKPT_DIR as CKPT_DIR
from memsr_jax.checkpoints.layout import CORRUPT_DIR as CORRUPT_DIR
from memsr_jax.checkpoints.layout import EXTRAS_PREFIX as EXTRAS_PREFIX
from memsr_jax.checkpoints.layout import MODEL_DIR as MODEL_DIR
from memsr_jax.checkpoints.model import load_model_checkpoint as load_model_checkpoint
from memsr_jax.checkpoints.model import load_model_item as load_model_item
from memsr_jax.checkpoints.model import save_model_checkpoint as save_model_checkpoint
from memsr_jax.checkpoints.orbax_io import abstract_tree as abstract_tree
from memsr_jax.checkpoints.orbax_io import saved_tree_metadata as saved_tree_metadata
from memsr_jax.checkpoints.orbax_io import versions as versions
from memsr_jax.checkpoints.training import TrainCheckpointer as TrainCheckpointer
from memsr_jax.checkpoints.training import restore_train_state as restore_train_state
from memsr_jax.checkpoints.tree_check import check_tree_matches as check_tree_matches
