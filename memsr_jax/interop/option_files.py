"""YAML option files (BasicSR's options/*.yml) parsed with limits.

`parse_yaml(text)` is `yaml.safe_load` with three limits checked while the document is composed,
before anything walks it: nesting depth (`MAX_DEPTH`), the size of the document with every alias
expanded (`MAX_NODES`: a "billion laughs" file is a few lines whose expansion has 10⁹ nodes), and
no alias inside the node it names (a recursive structure no reader can walk). Each is a
`YAMLLimitError` (a `yaml.YAMLError`), so callers that catch YAML errors report it in one line.
Real option files are a few levels deep and a few hundred nodes.
"""
from typing import Any

import yaml

MAX_DEPTH = 64
MAX_NODES = 100_000


class YAMLLimitError(yaml.YAMLError):
  """A YAML document over the depth or size limit, or with a recursive alias."""


def _children(node: yaml.Node) -> list[yaml.Node]:
  if isinstance(node, yaml.SequenceNode):
    return list(node.value)
  if isinstance(node, yaml.MappingNode):
    return [n for pair in node.value for n in pair]
  return []


class _LimitedLoader(yaml.SafeLoader):
  """SafeLoader that counts depth and expanded size as it composes each node."""

  def __init__(self, stream):
    super().__init__(stream)
    self._depth = 0
    self._open_anchors: set[str] = set()
    self._sizes: dict[int, int] = {}  # id(node) → nodes with aliases expanded

  def compose_node(self, parent, index):
    event = self.peek_event()
    is_alias = isinstance(event, yaml.AliasEvent)
    anchor = event.anchor
    if is_alias and anchor in self._open_anchors:
      raise YAMLLimitError(f"recursive alias *{anchor} (inside the node &{anchor} names), line "
                           f"{event.start_mark.line + 1}")
    if not is_alias:
      self._depth += 1
      if self._depth > MAX_DEPTH:
        raise YAMLLimitError(f"nested more than {MAX_DEPTH} levels deep, line "
                             f"{event.start_mark.line + 1}")
      if anchor is not None:
        self._open_anchors.add(anchor)
    try:
      node = super().compose_node(parent, index)
    finally:
      if not is_alias:
        self._depth -= 1
        self._open_anchors.discard(anchor)
    if id(node) not in self._sizes:
      self._sizes[id(node)] = 1 + sum(self._sizes.get(id(c), 1) for c in _children(node))
    if self._sizes[id(node)] > MAX_NODES:
      raise YAMLLimitError(f"more than {MAX_NODES} values with its aliases expanded, line "
                           f"{event.start_mark.line + 1}")
    return node


def parse_yaml(text: str) -> Any:
  """`yaml.safe_load(text)` within the module's limits (YAMLLimitError beyond them)."""
  loader = _LimitedLoader(text)
  try:
    return loader.get_single_data()
  finally:
    loader.dispose()
