"""SupervisedTask: train any registry model on (LR, HR) pairs with a pixel loss."""
import ml_collections

from memsr_jax.models import registry
from memsr_jax.train import config_lib
from memsr_jax.train import losses
from memsr_jax.train.task import Task
from memsr_jax.utils import pytrees


class ModelTask(Task):
  """predict / export / metadata for tasks that train one registry model: self.model, built from
  self.model_name and self.model_kwargs, with params as the model's own params."""

  def predict(self, params, extras, lr):
    del extras
    return self.model.apply({"params": params}, lr)

  def export(self, params, extras):
    del extras
    return self.model_name, dict(self.model_kwargs), params

  def metadata(self, params, extras):
    del extras
    return {"n_params": pytrees.count_params(params)}


class SupervisedTask(ModelTask):
  """config.model.name / .kwargs at config.scale, loss config.loss (L1, Charbonnier or MSE)."""
  name = "supervised"

  def __init__(self, config: ml_collections.ConfigDict):
    self.model_name = config.model.name
    self.model_kwargs = config_lib.as_dict(config.model.kwargs)
    self.model_kwargs["scale"] = config.scale
    self.model = registry.build_model(self.model_name, **self.model_kwargs)
    self.pixel_loss = losses.get_pixel_loss(config.loss.name, config.loss.charbonnier_eps)
    self.init_shape = (1, 16, 16, 3)

  def init(self, rng):
    return registry.init_params(self.model, rng, self.init_shape), {}

  def loss_fn(self, params, extras, batch, rng, step):
    del extras, rng, step
    sr = self.model.apply({"params": params}, batch["lr"])
    loss = self.pixel_loss(sr, batch["hr"])
    return loss, {}
