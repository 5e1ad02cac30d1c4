"""Which nodes of an exported SR graph play which part, for choosing what int8 quantization skips.

Groups (lists of node names of an ONNX graph, found from the graph alone, no model code):
- "first_conv": the first Conv in topological order (it sees the RGB input).
- "last_conv": the Convs from which the output is reached without passing another Conv.
- "pixel_shuffle": DepthToSpace nodes, and the 6-D Transpose of a reshape-based pixel shuffle with
  the Reshapes on either side of it.
- "skip": the Adds that read the first Conv's output (in residual nets the global skip, which
  carries the shallow features to the output, and the first block's residual).
- "shallow": the Convs that read the first Conv's output, and the Conv whose output the last skip
  Add adds to it (the body's last conv in residual nets).
- "tail": every node downstream of the last Conv(s) (pixel shuffle, output scaling).
- "attention": channel attention: nodes computing on pooled (spatially reduced) maps, the nodes
  joining a pooled value with a full-size map (x − mean, x · sigmoid), and the full-size nodes
  that only feed a reduction (the squares of a standard deviation).
- "concat": the Concat nodes (channel concatenations, e.g. IMDN's distilled features). Their
  inputs come from different layers with different ranges; quantized, the joined tensor shares
  one scale and the narrow inputs lose precision.

`input_ranges` gives the exact real range of the tensors between the model input (0..255 image
values) and the first Conv, so the quantizer can map them to uint8 without rounding loss.
"""
from collections import defaultdict

import numpy as np

GROUPS = ("first_conv", "skip", "shallow", "last_conv", "pixel_shuffle", "tail", "attention",
          "concat")
_REDUCTIONS = ("ReduceMean", "GlobalAveragePool", "ReduceSum", "ReduceMax", "GlobalMaxPool")
_PASS_THROUGH = ("Transpose", "Reshape", "Identity")


def graph_maps(graph):
  producer = {o: n for n in graph.node for o in n.output}
  consumers = defaultdict(list)
  for n in graph.node:
    for i in n.input:
      consumers[i].append(n)
  return producer, consumers


def _constants(graph) -> set[str]:
  names = {t.name for t in graph.initializer}
  names |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}
  return names


def _downstream(nodes, consumers) -> set[str]:
  """Names of the nodes reachable from `nodes` (excluded) through their outputs."""
  seen, stack = set(), [o for n in nodes for o in n.output]
  while stack:
    for c in consumers.get(stack.pop(), []):
      if c.name not in seen:
        seen.add(c.name)
        stack.extend(c.output)
  return seen


def _last_convs(graph, producer) -> list:
  """Convs reached first when walking back from the graph outputs."""
  found, seen = [], set()
  stack = [o.name for o in graph.output]
  while stack:
    n = producer.get(stack.pop())
    if n is None or n.name in seen:
      continue
    seen.add(n.name)
    if n.op_type == "Conv":
      found.append(n)
    else:
      stack.extend(n.input)
  return found


def _pixel_shuffle(graph, producer, consumers) -> list[str]:
  names = [n.name for n in graph.node if n.op_type == "DepthToSpace"]
  for n in graph.node:
    perm = next((list(a.ints) for a in n.attribute if a.name == "perm"), [])
    if n.op_type == "Transpose" and len(perm) == 6:
      names.append(n.name)
      before = producer.get(n.input[0])
      if before is not None and before.op_type == "Reshape":
        names.append(before.name)
      names += [c.name for c in consumers.get(n.output[0], []) if c.op_type == "Reshape"]
  return names


def _attention(graph, producer, consumers, constants) -> list[str]:
  """Nodes of channel attention (see the module docstring), in graph order."""
  pooled_tensors, members = set(), set()
  for n in graph.node:  # topological order: a node's producers come first
    ins = [i for i in n.input if i and i not in constants]
    if n.op_type in _REDUCTIONS or (ins and all(i in pooled_tensors for i in ins)):
      pooled_tensors.update(n.output)
      members.add(n.name)
    elif any(i in pooled_tensors for i in ins):
      members.add(n.name)  # a pooled value applied to a full-size map
  changed = True
  while changed:  # full-size nodes whose every consumer is attention (x − mean → square → mean)
    changed = False
    for n in graph.node:
      users = [c for o in n.output for c in consumers.get(o, [])]
      fed = any(producer[i].name in members for i in n.input if i in producer)
      if n.name not in members and users and fed and all(c.name in members for c in users):
        members.add(n.name)
        changed = True
  return [n.name for n in graph.node if n.name in members]


def name_nodes(model) -> None:
  """Gives every unnamed node a unique name (the quantizer selects nodes by name)."""
  used = {n.name for n in model.graph.node if n.name}
  for i, n in enumerate(model.graph.node):
    if not n.name:
      name = f"{n.op_type}_{i}"
      while name in used:
        name += "_"
      n.name = name
      used.add(name)


def node_groups(model) -> dict[str, list[str]]:
  """{group: node names} for the groups of the module docstring (named nodes required)."""
  graph = model.graph
  producer, consumers = graph_maps(graph)
  convs = [n for n in graph.node if n.op_type == "Conv"]
  last = _last_convs(graph, producer)
  tail = _downstream(last, consumers)
  readers = [c for o in (convs[0].output if convs else []) for c in consumers.get(o, [])]
  skip = [c for c in readers if c.op_type == "Add"]
  shallow = [c.name for c in readers if c.op_type == "Conv"]
  if skip:
    other = [producer.get(i) for i in skip[-1].input if i not in convs[0].output]
    shallow += [p.name for p in other if p is not None and p.op_type == "Conv"]
  return {
      "first_conv": [convs[0].name] if convs else [],
      "skip": [c.name for c in skip],
      "shallow": shallow,
      "last_conv": [n.name for n in last],
      "pixel_shuffle": _pixel_shuffle(graph, producer, consumers),
      "tail": [n.name for n in graph.node if n.name in tail],
      "attention": _attention(graph, producer, consumers, _constants(graph)),
      "concat": [n.name for n in graph.node if n.op_type == "Concat"],
  }


def _scalar(graph, name):
  for t in graph.initializer:
    if t.name == name:
      from onnx import numpy_helper  # onnx is an optional dependency of the package
      a = numpy_helper.to_array(t)
      return float(a.reshape(-1)[0]) if a.size == 1 else None
  return None


def input_ranges(model, value_range=(0.0, 255.0)) -> dict[str, tuple[float, float]]:
  """{tensor: (rmin, rmax)} from the model input through layout moves and scalar Mul/Div."""
  graph = model.graph
  _, consumers = graph_maps(graph)
  ranges = {graph.input[0].name: tuple(map(float, value_range))}
  stack = [graph.input[0].name]
  while stack:
    t = stack.pop()
    lo, hi = ranges[t]
    for n in consumers.get(t, []):
      if n.op_type in _PASS_THROUGH and n.input[0] == t:
        out = (lo, hi)
      elif n.op_type in ("Mul", "Div") and len(n.input) == 2:
        c = _scalar(graph, n.input[1] if n.input[0] == t else n.input[0])
        if c is None or c == 0 or (n.op_type == "Div" and n.input[1] == t):
          continue
        f = c if n.op_type == "Mul" else 1.0 / c
        out = tuple(sorted((lo * f, hi * f)))
      else:
        continue
      ranges[n.output[0]] = tuple(float(np.float32(v)) for v in out)
      stack.append(n.output[0])
  return ranges
