"""Static arena plan: offsets for every activation tensor from its lifetime (greedy first-fit).

A buffer lives from the layer that writes it to the last layer that reads it (the model input
from before layer 0, model outputs to the end). RESHAPE/SQUEEZE outputs are aliases of their
input and share one buffer whose lifetime is the union. A layer whose kernel needs scratch memory
(Layer.scratch bytes, e.g. the fast convolutions' gathered patches) gets a scratch buffer alive
during that layer only, like TFLite Micro's per-op scratch buffers: it never overlaps that layer's
inputs or output and is part of the arena. Buffers are placed largest first at the lowest aligned
offset that does not overlap any placed buffer alive at the same time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .lower import Layer
from .tflite_reader import Graph

ALIGN = 16


@dataclass
class Buffer:
    tensors: list[int]
    size: int
    first: int  # layer index that writes it (-1: the model input)
    last: int  # last layer index that reads it (len(layers): a model output)
    offset: int = 0
    scratch_of: int | None = None  # a layer's scratch buffer (tensors empty, first == last == layer)


@dataclass
class Plan:
    arena_bytes: int
    offsets: dict[int, int]  # tensor index -> byte offset
    buffers: list[Buffer]
    scratch: dict[int, tuple[int, int]] = field(default_factory=dict)  # layer -> (offset, bytes)

    @property
    def scratch_bytes(self) -> int:
        """The largest scratch buffer any layer uses (0: none)."""
        return max((size for _, size in self.scratch.values()), default=0)


def plan_arena(g: Graph, layers: list[Layer]) -> Plan:
    root: dict[int, int] = {}  # tensor -> representative tensor of its alias group

    def find(x: int) -> int:
        while root.get(x, x) != x:
            x = root[x]
        return x

    for layer in layers:
        if layer.alias:
            root[layer.output] = find(layer.inputs[0])
    groups: dict[int, Buffer] = {}

    def touch(tensor: int, when: int) -> None:
        r = find(tensor)
        size = g.tensors[r].size
        b = groups.setdefault(r, Buffer([], size, when, when))
        if tensor not in b.tensors:
            b.tensors.append(tensor)
        b.first, b.last = min(b.first, when), max(b.last, when)

    for i in g.inputs:
        touch(i, -1)
    for n, layer in enumerate(layers):
        for i in layer.inputs:
            touch(i, n)
        touch(layer.output, n)
    for o in g.outputs:
        touch(o, len(layers))
    scratch = [Buffer([], ly.scratch, n, n, scratch_of=n) for n, ly in enumerate(layers) if ly.scratch > 0]
    placed: list[Buffer] = []
    for b in sorted([*groups.values(), *scratch], key=lambda b: (-b.size, b.first)):
        live = sorted((p for p in placed if p.first <= b.last and b.first <= p.last), key=lambda p: p.offset)
        offset = 0
        for p in live:
            if offset + b.size <= p.offset:
                break
            offset = max(offset, _align(p.offset + p.size))
        b.offset = offset
        placed.append(b)
    arena = _align(max((b.offset + b.size for b in placed), default=0))
    offsets = {t: b.offset for b in placed for t in b.tensors}
    scratch_at = {b.scratch_of: (b.offset, b.size) for b in placed if b.scratch_of is not None}
    return Plan(max(arena, ALIGN), offsets, placed, scratch_at)


def _align(x: int) -> int:
    return (x + ALIGN - 1) // ALIGN * ALIGN
