"""The training engine: config defaults (config_lib), losses, optim, state (the pure step),
sharding, checkpoint (the one Orbax module), data (batch sources), validation, loop (`train`),
supervised (SupervisedTask) and task (the Task base class every method's tasks subclass)."""
