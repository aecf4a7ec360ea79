"""word2vec's Huffman tree over the vocabulary counts, for hierarchical softmax (Morin & Bengio 2005).

The layout is the C tool's (`CreateBinaryTree` in word2vec.c): with V words there are V - 1
inner nodes, numbered in the order they are merged (the root is V - 2); a word's `points` are
the inner nodes from the root down to its parent and its `codes` the branches taken (0: the
lighter node of a merge, 1: the heavier). gensim stores the same layout. The two tools differ
only in how they break ties between equal counts (the C tool: two queues, a merged node before
a word; gensim: a heap ordered by count alone), and with ties, which Zipfian counts are full of,
per-word code lengths differ while the tree's cost (sum of count x length) is the same. The
default follows gensim, so that a tree here equals gensim's `hs=1` tree code for code (tested);
`ties="c"` gives the C tool's.
"""

from __future__ import annotations

import dataclasses
import heapq

import numpy as np


@dataclasses.dataclass(frozen=True)
class HuffmanTree:
  """Paths from the root to every word, padded to the longest.

  Attributes:
    codes: [V, L] uint8 branch taken at each inner node of the path (0 past the path's end).
    points: [V, L] int32 inner-node ids (0..V-2) of the path, root first (0 past the end).
    lengths: [V] int32 path lengths (code lengths), 1..L.
  """
  codes: np.ndarray
  points: np.ndarray
  lengths: np.ndarray

  @property
  def max_length(self) -> int:
    return int(self.codes.shape[1])

  def signs(self) -> np.ndarray:
    """[V, L] float32: +1 where the code is 0, -1 where it is 1, 0 past the path's end.

    P(word | h) = prod_j sigmoid(sign_j * h . node_j): word2vec's `1 - code` label as a sign.
    """
    inside = np.arange(self.max_length)[None, :] < self.lengths[:, None]
    return np.where(inside, 1.0 - 2.0 * self.codes, 0.0).astype(np.float32)


TIES = ("gensim", "c")


class _HeapNode:
  """A heap entry ordered by count alone, as gensim's `Heapitem` (ties: heapq's own order)."""
  __slots__ = ("count", "node")

  def __init__(self, count: int, node: int):
    self.count, self.node = count, node

  def __lt__(self, other: "_HeapNode") -> bool:
    return self.count < other.count


def build_huffman_tree(counts, ties: str = "gensim") -> HuffmanTree:
  """The Huffman tree of `counts` [V] (V >= 2; ids are positions).

  Args:
    counts: [V] word counts.
    ties: "gensim" (its heap, ordered by count alone: the tree equals gensim's `hs=1` tree
      code for code) or "c" (the C tool's two queues over counts sorted in decreasing order:
      at equal counts the merged node first, then the later word).
  """
  counts = np.asarray(counts, dtype=np.int64)
  size = len(counts)
  if size < 2:
    raise ValueError(f"a Huffman tree needs at least 2 words, got {size}")
  if ties not in TIES:
    raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
  parent = np.zeros(2 * size - 1, np.int64)
  branch = np.zeros(2 * size - 1, np.uint8)
  merges = _heap_merges(counts) if ties == "gensim" else _two_queue_merges(counts)
  for merge, (smaller, larger) in enumerate(merges):
    parent[[smaller, larger]] = size + merge
    branch[larger] = 1
  return _paths(parent, branch, size)


def _heap_merges(counts: np.ndarray):
  """(smaller, larger) node of each merge, popped as gensim's `_build_heap` pops them."""
  size = len(counts)
  heap = [_HeapNode(count, node) for node, count in enumerate(counts.tolist())]
  heapq.heapify(heap)
  for merge in range(size - 1):
    smaller, larger = heapq.heappop(heap), heapq.heappop(heap)
    heapq.heappush(heap, _HeapNode(smaller.count + larger.count, size + merge))
    yield smaller.node, larger.node


def _two_queue_merges(counts: np.ndarray):
  """(smaller, larger) node of each merge as word2vec.c's `CreateBinaryTree` picks them."""
  size = len(counts)
  # The C tool walks its count-sorted vocabulary from the rarest word up (pos1--); merged nodes
  # queue in merge order (pos2++), and a word is taken only if strictly lighter.
  words = np.argsort(-counts, kind="stable")[::-1].tolist()
  node_counts = counts.tolist() + [0] * (size - 1)
  next_word, next_merged = 0, size
  for merge in range(size - 1):
    chosen = []
    for _ in range(2):
      merged_ready = next_merged < size + merge
      if next_word < size and (not merged_ready
                               or node_counts[words[next_word]] < node_counts[next_merged]):
        chosen.append(words[next_word])
        next_word += 1
      else:
        chosen.append(next_merged)
        next_merged += 1
    node_counts[size + merge] = node_counts[chosen[0]] + node_counts[chosen[1]]
    yield chosen[0], chosen[1]


def _paths(parent: np.ndarray, branch: np.ndarray, size: int) -> HuffmanTree:
  """Walks every word up to the root at once (one numpy step per tree level)."""
  root = 2 * size - 2
  node = np.arange(size)
  upward_codes, upward_points = [], []
  lengths = np.zeros(size, np.int32)
  active = node != root
  while active.any():
    upward_codes.append(np.where(active, branch[node], 0))
    upward_points.append(np.where(active, parent[node] - size, 0))
    lengths += active
    node = np.where(active, parent[node], node)
    active = node != root
  codes_up = np.stack(upward_codes, 1)  # [V, L], the word's own branch first
  points_up = np.stack(upward_points, 1)
  depth = np.arange(codes_up.shape[1])[None, :]
  inside = depth < lengths[:, None]
  # Root first: position j of the path is step (length - 1 - j) of the walk up.
  upward_index = np.where(inside, lengths[:, None] - 1 - depth, 0)
  codes = np.where(inside, np.take_along_axis(codes_up, upward_index, 1), 0).astype(np.uint8)
  points = np.where(inside, np.take_along_axis(points_up, upward_index, 1), 0).astype(np.int32)
  return HuffmanTree(codes, points, lengths)
