"""Tests for eval/sentiment.py: features, logistic regression, split, CSV, the binary."""

import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from eval import sentiment
from w2v_tf.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_split_is_first_half_then_second_half():
  train, test = sentiment.split_rows(7)
  assert train.tolist() == [0, 1, 2] and test.tolist() == [3, 4, 5, 6]


@pytest.mark.parametrize("gather", [1 << 18, 2])
def test_average_vectors(monkeypatch, gather):
  monkeypatch.setattr(sentiment, "_GATHER_TOKENS", gather)
  words = ["a", "b", "c", "a"]  # a repeated word keeps its first row
  vectors = np.array([[1, 0], [0, 2], [4, 4], [9, 9]], dtype=np.float32)
  docs = [["a", "b"], [], ["zz"], ["c", "a", "zz", "c"], ["b"]]
  features, coverage = sentiment.average_vectors(docs, words, vectors)
  np.testing.assert_allclose(features, [[0.5, 1], [0, 0], [0, 0], [3, 8 / 3], [0, 2]],
                             rtol=1e-6)
  assert coverage == pytest.approx(6 / 8)


def test_logistic_regression_reaches_the_optimum():
  rng = np.random.default_rng(0)
  x = rng.standard_normal((400, 5))
  y = (x @ np.array([2.0, -1.0, 0.0, 0.5, 0.0]) + 0.3 * rng.standard_normal(400) > 0)
  y = y.astype(np.int64)
  model = sentiment.train_logistic_regression(x, y, l2=1.0)
  mean, scale, weights = model
  design = np.hstack([(x - mean) / scale, np.ones((400, 1))])
  p = 1 / (1 + np.exp(-design @ weights))
  gradient = design.T @ (p - y) + np.append(weights[:-1], 0.0)
  assert np.abs(gradient).max() < 1e-6  # a stationary point of a convex objective
  assert np.mean(sentiment.predict_logistic_regression(model, x) == y) > 0.9


def _synthetic_corpus(num_docs=600, vocab=400, seed=0):
  """Documents whose label is carried by which half of the vocabulary they draw from."""
  rng = np.random.default_rng(seed)
  words = [f"w{i}" for i in range(vocab)]
  labels = rng.integers(0, 2, num_docs)
  docs = []
  for label in labels:
    pool = np.arange(vocab // 2) + (vocab // 2 if label else 0)
    docs.append([words[i] for i in rng.choice(pool, 6)] +
                [words[i] for i in rng.integers(0, vocab, 6)])
  # Learned vectors: dimension 0 says which half a word belongs to.
  vectors = rng.standard_normal((vocab, 8)).astype(np.float32)
  vectors[:, 0] = np.where(np.arange(vocab) < vocab // 2, -1.0, 1.0)
  return words, vectors, docs, labels


def test_learned_vectors_beat_random_ones():
  words, vectors, docs, labels = _synthetic_corpus()
  result = sentiment.evaluate_sentiment(words, vectors, docs, labels, seed=0)
  assert result["test_accuracy"] > 0.95
  assert result["random_test_accuracy"] < result["test_accuracy"] - 0.1
  assert result["train_reviews"] == 300 and result["test_reviews"] == 300
  assert result["token_coverage"] == 1.0
  again = sentiment.evaluate_sentiment(words, vectors, docs, labels, seed=0)
  assert again["random_test_accuracy"] == result["random_test_accuracy"]  # seeded


def test_evaluate_needs_both_labels():
  words, vectors, docs, _ = _synthetic_corpus(num_docs=10)
  with pytest.raises(UserError, match="only one label"):
    sentiment.evaluate_sentiment(words, vectors, docs, np.ones(10, dtype=np.int64))


def _write_csv(path, rows, header="review,sentiment"):
  text = header + "\n" + "".join(f'"{r}",{s}\n' for r, s in rows)
  if str(path).endswith(".gz"):
    with gzip.open(path, "wt", encoding="utf-8") as f:
      f.write(text)
  else:
    path.write_text(text, encoding="utf-8")
  return str(path)


@pytest.mark.parametrize("name", ["r.csv", "r.csv.gz"])
def test_read_labelled_reviews(tmp_path, name):
  path = _write_csv(tmp_path / name, [("Great, fun.<br />Yes", "positive"),
                                      ("dull", "Negative"), ("ok", "positive")])
  reviews, labels = sentiment.read_labelled_reviews(path)
  assert reviews == ["Great, fun.<br />Yes", "dull", "ok"] and labels.tolist() == [1, 0, 1]
  reviews, labels = sentiment.read_labelled_reviews(path, max_reviews=2)
  assert len(reviews) == 2


@pytest.mark.parametrize("content,message", [
    (None, "not found"),
    ("", "is empty"),
    ("review,label\nx,positive\n", "no column 'sentiment'"),
    ("review,sentiment\nx,positive\ny,meh\n", "row 3 has sentiment 'meh'"),
    ("review,sentiment\n", "no rows"),
])
def test_read_errors(tmp_path, content, message):
  path = tmp_path / "r.csv"
  if content is not None:
    path.write_text(content)
  with pytest.raises(UserError, match=message):
    sentiment.read_labelled_reviews(str(path))


def test_binary_end_to_end(tmp_path):
  """Toy reviews, toy vectors: both accuracies are printed and written (imports TensorFlow)."""
  rng = np.random.default_rng(0)
  good, bad = ["great", "superb", "lovely"], ["awful", "boring", "dreadful"]
  rows = []
  for i in range(80):
    label = i % 2
    pool = good if label else bad
    rows.append((" ".join(rng.choice(pool, 3)) + " movie plot", ["negative", "positive"][label]))
  csv = _write_csv(tmp_path / "r.csv", rows)
  words = good + bad + ["movie", "plot"]
  vectors = rng.standard_normal((len(words), 4)).astype(np.float32)
  vectors[:, 0] = [1, 1, 1, -1, -1, -1, 0, 0]
  vectors_path = tmp_path / "v.txt"
  vectors_path.write_text(f"{len(words)} 4\n" + "".join(
      w + " " + " ".join(map(str, row)) + "\n" for w, row in zip(words, vectors)))
  out_json = tmp_path / "s.json"
  run = subprocess.run([sys.executable, "-m", "eval.sentiment", f"--vectors={vectors_path}",
                        f"--csv={csv}", "--stopwords=none", f"--output_json={out_json}"],
                       cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert run.returncode == 0, run.stderr
  assert "averaged word vectors" in run.stdout and "random vectors" in run.stdout
  result = json.loads(out_json.read_text())
  assert result["test_accuracy"] == 1.0
  assert result["train_reviews"] == 40 and result["token_coverage"] == 1.0
  assert 0.0 <= result["random_test_accuracy"] <= 1.0
