"""gensim's own scoring of one analogy question, for the near-ties `eval.analogy` re-scores.

`eval.analogy` scores every question in float32 batches; where the best two candidates are
within float32 noise of each other, it asks `ExactScorer` for gensim's top 5 (computed in the
same precision and operation order as gensim's `most_similar` / `most_similar_cosmul`), so that
near-ties break exactly as `KeyedVectors.evaluate_word_analogies` breaks them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

_GENSIM_TOPN = 5  # evaluate_word_analogies asks most_similar for 5 answers
_COSMUL_EPSILON = 1e-6  # gensim most_similar_cosmul


def _blas_nrm2():
  """scipy's double-precision nrm2 (what gensim's `unitvec` uses), else a numpy stand-in."""
  try:
    from scipy.linalg import blas  # pylint: disable=import-outside-toplevel
    return lambda x: blas.dnrm2(np.asarray(x, dtype=np.float64))
  except ImportError:  # pragma: no cover - scipy comes with gensim; only near-ties differ
    return lambda x: float(np.sqrt(np.dot(x, x)))


def _gensim_argsort_desc(dists: np.ndarray, topn: int) -> np.ndarray:
  """gensim `matutils.argsort(dists, topn, reverse=True)`, tie order included."""
  x = -dists
  if topn >= x.size:
    return np.argsort(x)[:topn]
  most_extreme = np.argpartition(x, topn)[:topn]
  return most_extreme.take(np.argsort(x.take(most_extreme)))


class ExactScorer:
  """Scores one question the way gensim does (float32, same operation order)."""

  def __init__(self, raw: np.ndarray, norms: np.ndarray):
    self._raw = raw  # [n, d] float32, the candidates' original vectors
    self._norms = norms  # [n] float32
    self._nrm2 = _blas_nrm2()

  def top5(self, method: str, a: int, b: int, c: int) -> list[int]:
    """gensim's `most_similar(_cosmul)(positive=[b, c], negative=[a], topn=5)` as rows."""
    raw, norms = self._raw, self._norms
    if method == "3cosadd":
      mean = np.zeros(raw.shape[1], dtype=np.float32)
      total_weight = 0.0
      for weight, row in ((np.float64(1.0), b), (np.float64(1.0), c), (np.float64(-1.0), a)):
        mean += weight * (raw[row] / norms[row])
        total_weight += abs(weight)
      mean = mean / total_weight  # float64, as gensim's get_mean_vector
      length = self._nrm2(mean)
      if length > 0:
        mean = (mean * (1.0 / length)).astype(np.float32)
      else:
        mean = mean.astype(np.float32)
      dists = np.dot(raw, mean) / norms  # [n]
      exclude = [b, c, a]
    else:
      pos = [(1 + np.dot(raw, raw[row] / norms[row]) / norms) / 2 for row in (b, c)]
      neg = [(1 + np.dot(raw, raw[a] / norms[a]) / norms) / 2]
      dists = np.prod(pos, axis=0) / (np.prod(neg, axis=0) + _COSMUL_EPSILON)  # [n]
      exclude = list({a, b, c})
    best = _gensim_argsort_desc(dists, _GENSIM_TOPN + len(exclude))
    return [int(i) for i in best if int(i) not in exclude][:_GENSIM_TOPN]


def gensim_prediction(top5: Sequence[int], canon: np.ndarray, ignore: set[int]) -> int:
  """gensim's answer from its top 5: the first whose form is not a question word, else the last.

  Returns the canonical row of the predicted form (-1 when there is no candidate at all).
  """
  predicted = -1
  for row in top5:
    predicted = int(canon[row])
    if predicted not in ignore:
      break
  return predicted
