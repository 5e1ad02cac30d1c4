"""What can go wrong with a checkpoint, as user errors (one line on stderr, exit status 2)."""
from memsr_jax.utils.cli import UserError


class CheckpointMismatchError(UserError, ValueError):
  """The checkpoint's tree does not fit the model/state it is restored into."""


class CheckpointUnreadableError(UserError, OSError):
  """No readable checkpoint where one was asked for (damaged files, not a checkpoint)."""


class CheckpointNotFoundError(UserError, FileNotFoundError):
  """No checkpoint at the path given."""


class CheckpointSaveError(UserError, OSError):
  """A checkpoint could not be written (disk full, permissions); training stops at once."""
