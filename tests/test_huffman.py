"""w2v_tf/huffman.py: word2vec's Huffman tree, against gensim's for the same counts."""

import numpy as np
import pytest
from gensim.models import KeyedVectors
from gensim.models.word2vec import _assign_binary_codes

from w2v_tf.huffman import build_huffman_tree


def _zipf_counts(size, seed=0):
  """Counts of a Zipfian corpus of ~2M tokens with min_count 5: thousands of ties at the tail."""
  rng = np.random.default_rng(seed)
  return np.maximum((2e5 / np.arange(1, size + 1) ** 1.05 * rng.uniform(0.9, 1.1, size)
                     ).astype(np.int64), 5)


def _gensim_codes(counts):
  """gensim's (codes, points) per word, from its own tree builder."""
  vectors = KeyedVectors(4)
  vectors.add_vectors([f"w{i}" for i in range(len(counts))], np.zeros([len(counts), 4]))
  for index, count in enumerate(counts):
    vectors.set_vecattr(index, "count", int(count))
  _assign_binary_codes(vectors)
  return ([list(vectors.get_vecattr(i, "code")) for i in range(len(counts))],
          [list(vectors.get_vecattr(i, "point")) for i in range(len(counts))])


@pytest.mark.parametrize("counts", [[2, 1, 1, 1, 1], [5] * 7, [3, 1], _zipf_counts(20000)],
                         ids=["small", "all-equal", "two", "zipf-20k"])
def test_codes_and_points_equal_gensims(counts):
  tree = build_huffman_tree(counts)
  codes, points = _gensim_codes(counts)
  assert [len(code) for code in codes] == tree.lengths.tolist()  # the code lengths
  for word, (code, point) in enumerate(zip(codes, points)):
    length = tree.lengths[word]
    assert tree.codes[word, :length].tolist() == code, word
    assert tree.points[word, :length].tolist() == point, word
  assert (tree.points[:, 0] == len(counts) - 2).all()  # the root first, as in the C tool


def test_the_c_tools_tie_breaking_is_another_optimal_tree():
  counts = _zipf_counts(20000, seed=1)
  gensim_tree, c_tree = build_huffman_tree(counts), build_huffman_tree(counts, ties="c")
  # Both are prefix codes (Kraft equality) of the same, minimal cost ...
  for tree in (gensim_tree, c_tree):
    assert np.isclose(np.sum(2.0 ** -tree.lengths.astype(np.float64)), 1.0)
    paths = {tuple(tree.codes[w, :tree.lengths[w]]) for w in range(len(counts))}
    assert len(paths) == len(counts)
  assert (counts * gensim_tree.lengths).sum() == (counts * c_tree.lengths).sum()
  # ... and with distinct counts they are the same tree.
  distinct = np.arange(3000, 0, -1) * 7 + 1
  assert (build_huffman_tree(distinct).lengths
          == build_huffman_tree(distinct, ties="c").lengths).all()
  # Frequent words get short codes.
  assert gensim_tree.lengths[0] <= 5 and gensim_tree.lengths[-1] >= gensim_tree.lengths[0] + 8


def test_signs_and_bad_input():
  tree = build_huffman_tree([4, 3, 2, 1])
  signs = tree.signs()
  assert signs.shape == tree.codes.shape
  for word in range(4):
    length = tree.lengths[word]
    assert (signs[word, :length] == 1 - 2 * tree.codes[word, :length].astype(int)).all()
    assert (signs[word, length:] == 0).all()
  with pytest.raises(ValueError, match="at least 2 words"):
    build_huffman_tree([7])
  with pytest.raises(ValueError, match="ties"):
    build_huffman_tree([2, 1], ties="heap")
