"""Compares the paper configs with the authors' released recipes and prints the table.

  python -m memsr_jax.release_check [--markdown]

Exit status 1 when a paper config differs from its release without a documented reason
(memsr_jax/methods/compress/release.py: EQUIVALENT, DEVIATIONS).
"""
import argparse
import importlib.util
import pathlib
import sys

from memsr_jax.methods.compress import release

REPO = pathlib.Path(__file__).resolve().parents[1]
PAPER_CONFIGS = {"configs/compress/edsr_x2.py": "edsr_baseline",
                 "configs/compress/swinir_x2.py": "swinir_s"}


def load_config(path: pathlib.Path):
  # Config files are scripts (loaded by path, as config_flags does), not modules of the package.
  spec = importlib.util.spec_from_file_location(path.stem, path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config()


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--markdown", action="store_true", help="print markdown tables")
  args = ap.parse_args(argv)
  bad = 0
  for rel_path, model in PAPER_CONFIGS.items():
    rows = release.compare(load_config(REPO / rel_path), model)
    files = ", ".join(release.RELEASE_FILES[model])
    print(f"\n{rel_path} vs the release ({files}):")
    if args.markdown:
      print(release.format_markdown(rows))
    else:
      for r in rows:
        print(f"  {r['status']:>10}  {r['key']:<40} release={r['release']!s:<22} ours={r['ours']}")
    bad += sum(r["status"] == "differs" for r in rows)
  if bad:
    print(f"\n{bad} value(s) differ from the release without a documented reason", file=sys.stderr)
  return 1 if bad else 0


if __name__ == "__main__":
  sys.exit(main())
