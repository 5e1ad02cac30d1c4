"""The folder layers of docs/DESIGN.md ("Layers"), checked on the import graph of memsr_jax.

A unit is a subpackage (`memsr_jax.train`) or a top-level module (`memsr_jax.upscale`). Every import
statement of every module, and every string constant that names a memsr_jax module (targets of
`importlib.import_module`), is an edge from its unit to the imported unit. The layers forbid some
edges outright and every cycle between units.
"""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "memsr_jax"

_DEPLOY = ("deploy", "upscale", "export")
# (importer units, imported units): never an edge from the first to the second.
_ALL = ("image", "data", "models", "interop", "checkpoints", "inference", "evaluation", "measure",
        "deploy", "train", "methods", "experiments", "tools")
FORBIDDEN = [
    (("utils",), _ALL),
    (("inference",), ("evaluation", "measure", "deploy", "train", "methods", "experiments")),
    (("image",), ("models", "data", "train", "methods")),
    (("data",), ("models", "train", "methods")),
    (("models",), ("train", "methods", "checkpoints", "deploy")),
    (("checkpoints",), ("train", "methods", "deploy", "evaluation", "measure")),
    (("train",), ("methods", "experiments")),
    (("evaluation", "measure"), ("methods", "train", "experiments")),
    (_DEPLOY, ("train", "measure", "methods", "experiments")),
    (("methods",), ("experiments",)),
]
# Only the entry points import the commands' package.
ENTRY_UNITS = {"tools", "eval", "qat"}


def unit_of(module: str):
  """'memsr_jax.a.b' → 'a' when memsr_jax/a is a package or memsr_jax/a.py a module, else None."""
  parts = module.split(".")
  if parts[0] != "memsr_jax" or len(parts) < 2:
    return None
  name = parts[1]
  if (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file():
    return name
  return None


def _module_name(path: pathlib.Path) -> str:
  rel = path.relative_to(PACKAGE.parent).with_suffix("")
  parts = list(rel.parts)
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(tree: ast.AST, module: str, is_package: bool) -> set[str]:
  out = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      out.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      if node.level:  # relative: resolved against this module's package
        base = module.split(".")
        base = base[:len(base) - node.level + (1 if is_package else 0)]
        prefix = ".".join(base + ([node.module] if node.module else []))
      else:
        prefix = node.module or ""
      out.add(prefix)
      out.update(f"{prefix}.{alias.name}" for alias in node.names)
    elif isinstance(node, ast.Constant) and isinstance(node.value, str) and \
        node.value.startswith("memsr_jax.") and " " not in node.value:
      out.add(node.value)
  return out


def import_edges() -> dict[tuple[str, str], str]:
  """{(importer unit, imported unit): a file with that import}."""
  edges = {}
  for path in sorted(PACKAGE.rglob("*.py")):
    module = _module_name(path)
    me = unit_of(module)
    tree = ast.parse(path.read_text(), str(path))
    for target in _imported(tree, module, path.name == "__init__.py"):
      other = unit_of(target)
      if me and other and other != me:
        edges.setdefault((me, other), str(path.relative_to(PACKAGE.parent)))
  return edges


def cycles(edges) -> list[tuple[str, str]]:
  """Pairs of units that reach each other."""
  graph: dict[str, set[str]] = {}
  for a, b in edges:
    graph.setdefault(a, set()).add(b)

  def reach(start):
    seen, todo = set(), [start]
    while todo:
      for nxt in graph.get(todo.pop(), ()):
        if nxt not in seen:
          seen.add(nxt)
          todo.append(nxt)
    return seen

  reachable = {a: reach(a) for a in graph}
  return sorted({tuple(sorted((a, b))) for a, b in edges if a in reachable.get(b, ())})


def violations(edges) -> list[str]:
  bad = [f"{a} -> {b} ({where})" for (a, b), where in edges.items()
         for sources, targets in FORBIDDEN if a in sources and b in targets]
  bad += [f"{a} -> tools ({where})" for (a, b), where in edges.items()
          if b == "tools" and a not in ENTRY_UNITS]
  return bad


def test_no_forbidden_edge_and_no_cycle():
  edges = import_edges()
  assert len(edges) > 20  # the graph was read
  assert violations(edges) == []
  assert cycles(edges) == []


@pytest.mark.parametrize("edges,problem", [
    ({("models", "train"): "m.py"}, "models -> train"),
    ({("deploy", "measure"): "d.py"}, "deploy -> measure"),
    ({("data", "tools"): "x.py"}, "data -> tools"),
])
def test_a_forbidden_edge_is_reported(edges, problem):
  assert [v for v in violations(edges) if v.startswith(problem)]


def test_a_cycle_is_reported_and_relative_imports_resolve():
  assert cycles({("a", "b"): "", ("b", "c"): "", ("c", "a"): ""}) == [("a", "b"), ("a", "c"),
                                                                     ("b", "c")]
  tree = ast.parse("from ..image import io\nfrom . import folders\n")
  got = _imported(tree, "memsr_jax.data.fetch", is_package=False)
  assert {"memsr_jax.image.io", "memsr_jax.data.folders"} <= got
