"""Experiments: each method's paper claims, tested in one command.

  python -m memsr_jax.experiments NAME --budget gpu8|cpu|smoke --workdir W

NAME: edsr_baseline_x2, memsr_x4, mssr_x2, compress_x2 (specs.py). Budgets: budgets.py. Claims and
the rule per kind: claims.py. Writes W/results.json and W/results.md; rerunning resumes
(runner.py). See docs/EXPERIMENTS.md.
"""
