"""Every import of a module that is being renamed, in one place (update here after the renames).

  methods/<m>/pipeline.py        -> methods/<m>/stages.py
  methods/<m>/{recipes,config}.py -> methods/<m>/config.py
  memsr_jax/evaluation.py        -> memsr_jax/evaluation/ (protocol functions kept)
The rest of memsr_jax.experiments refers to these names only.
"""
from memsr_jax import evaluation  # evaluate_dataset(predict_fn, dataset, scale, root)
from memsr_jax.methods.compress import config as compress_config  # compress_config()
from memsr_jax.methods.compress import pipeline as compress_pipeline  # run(config, workdir)
from memsr_jax.methods.memsr import pipeline as memsr_pipeline  # run(config, workdir)
from memsr_jax.methods.memsr import recipes as memsr_recipes  # paper(), teacher_config()
from memsr_jax.methods.mssr import pipeline as mssr_pipeline  # run(config, workdir)
from memsr_jax.methods.mssr import recipes as mssr_recipes  # edsr_baseline_div2k(), edsr_cpu()

__all__ = ["evaluation", "compress_config", "compress_pipeline", "memsr_pipeline", "memsr_recipes",
           "mssr_pipeline", "mssr_recipes"]
