"""Tests for eval/sentiment.py: split, token ids, masked averages, classifiers, CSV, binary."""

import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from eval import sentiment
from eval import sentiment_classifier as classifier
from w2v_tf.errors import UserError
from w2v_tf.word_vectors import WordVectors

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_split_is_first_half_then_second_half():
  train, test = sentiment.split_rows(7)
  assert train.tolist() == [0, 1, 2] and test.tolist() == [3, 4, 5, 6]


def test_validation_slice_is_the_end_of_the_training_half():
  train, test = sentiment.split_rows(40)
  fit, validation = sentiment.validation_rows(train, 0.1)
  assert fit.tolist() == list(range(18)) and validation.tolist() == [18, 19]
  assert test.tolist() == list(range(20, 40))
  fit, validation = sentiment.validation_rows(np.arange(3), 0.1)  # at least one of each
  assert fit.tolist() == [0, 1] and validation.tolist() == [2]


def _lookup_and_embedding(words, vectors, trainable=False):
  from w2v_tf.keras_vectors import embedding_layers  # pylint: disable=import-outside-toplevel
  return embedding_layers(WordVectors(words, vectors), trainable=trainable, mask_zero=True)


_DOCS = [["a", "b"], [], ["zz"], ["c", "a", "zz", "c"], ["b"] * 5]


def test_encode_reviews_keeps_known_tokens_and_truncates():
  lookup, _ = _lookup_and_embedding(["a", "b", "c"], np.zeros((3, 2)))
  ids, stats = classifier.encode_reviews(_DOCS, lookup, max_length=3)
  # a, b, c are 2, 3, 4; 1 is the OOV id (a review with no known token); 0 is padding.
  assert ids.dtype == np.int32
  assert ids.tolist() == [[2, 3, 0], [1, 0, 0], [1, 0, 0], [4, 2, 4], [3, 3, 3]]
  assert stats == {"token_coverage": pytest.approx(10 / 12), "truncated_reviews": 1,
                   "empty_reviews": 2}


def test_masked_average_leaves_padding_and_unknown_words_out():
  vectors = np.array([[1, 0], [0, 2], [4, 4]], dtype=np.float32)
  lookup, embedding = _lookup_and_embedding(["a", "b", "c"], vectors)
  ids, _ = classifier.encode_reviews(_DOCS, lookup, max_length=6)
  averages = classifier.masked_averages(embedding, ids)
  np.testing.assert_allclose(averages, [[0.5, 1], [0, 0], [0, 0], [3, 8 / 3], [0, 2]],
                             rtol=1e-6)
  assert np.isfinite(averages).all()  # empty reviews: the OOV row, not 0 / 0


def test_random_vectors_are_seeded_and_scaled():
  vectors = np.random.default_rng(1).normal(scale=0.2, size=(500, 10)).astype(np.float32)
  first, again = classifier.random_like(vectors, 3), classifier.random_like(vectors, 3)
  np.testing.assert_array_equal(first, again)
  assert first.shape == vectors.shape and first.dtype == np.float32
  assert np.std(first) == pytest.approx(np.std(vectors), rel=0.05)
  assert not np.array_equal(first, classifier.random_like(vectors, 4))


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


# A few hundred reviews make ~10 steps an epoch: larger steps than the defaults (tuned on 22.5k).
_QUICK = classifier.ClassifierConfig(epochs=30, patience=3, batch_size=32, learning_rate=1e-2,
                                     fine_tune_learning_rate=1e-2)


def test_pretrained_frozen_beats_random_and_fine_tuning_keeps_it():
  words, vectors, docs, labels = _synthetic_corpus()
  lines = []
  result = sentiment.evaluate_sentiment(WordVectors(words, vectors), docs, labels, _QUICK,
                                        log=lines.append)
  frozen, random, trainable = (result["variants"][v] for v in sentiment.VARIANTS)
  assert frozen["test_accuracy"] > 0.95
  assert random["test_accuracy"] < frozen["test_accuracy"] - 0.1
  assert trainable["test_accuracy"] > 0.85  # 93.0% when written (frozen 99.3%, random 53.0%)
  assert result["gap"] == frozen["test_accuracy"] - random["test_accuracy"]
  assert (result["train_reviews"], result["validation_reviews"],
          result["test_reviews"]) == (270, 30, 300)
  assert result["token_coverage"] == 1.0 and result["embedding_words"] == 400
  for variant in (frozen, random, trainable):
    assert 1 <= variant["best_epoch"] <= variant["epochs"] <= _QUICK.epochs
  assert sum(line.startswith("frozen: epoch ") for line in lines) == frozen["epochs"]
  assert "val acc" in lines[0]


def test_only_words_in_the_reviews_enter_the_embedding():
  words, vectors, docs, labels = _synthetic_corpus(num_docs=40)
  extra = WordVectors(words + ["never", "seen"], np.vstack([vectors, np.ones((2, 8))]))
  result = sentiment.evaluate_sentiment(extra, docs, labels, _QUICK, variants=["frozen"],
                                        log=lambda line: None)
  used = {t for doc in docs for t in doc}
  assert result["embedding_words"] == len(used) < len(extra)
  assert result["vocab_size"] == 402 and list(result["variants"]) == ["frozen"]
  assert result["gap"] is None


def test_quiet_retracing_drops_only_the_retracing_warnings():
  import logging  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  seen = []
  handler = logging.Handler()
  handler.emit = lambda record: seen.append(record.getMessage())
  logger = tf.get_logger()
  logger.addHandler(handler)
  retracing = ("5 out of the last 5 calls to <function f at 0x1> triggered tf.function "
               "retracing. Tracing is expensive")
  try:
    with classifier.quiet_retracing():
      logger.warning(retracing)
      logger.warning("another warning")
    logger.warning(retracing)  # only within
  finally:
    logger.removeHandler(handler)
  assert seen == ["another warning", retracing]


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
                        f"--csv={csv}", "--stopwords=none", f"--output_json={out_json}",
                        "--batch_size=8", "--learning_rate=0.01", "--fine_tune_learning_rate=0.01",
                        "--epochs=30", "--patience=3"],
                       cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert run.returncode == 0, run.stderr
  for name in ("pre-trained, frozen", "random, frozen (control)", "pre-trained, fine-tuned",
               "gap, pre-trained frozen - random frozen"):
    assert name in run.stdout, run.stdout
  assert "frozen: epoch 1/30 | loss " in run.stderr
  # TF's two ~600-character warnings about the variants' predict functions are silenced.
  assert "retracing" not in run.stderr, run.stderr
  result = json.loads(out_json.read_text())
  assert result["variants"]["frozen"]["test_accuracy"] == 1.0
  assert result["variants"]["trainable"]["test_accuracy"] >= 0.9
  assert result["gap"] == pytest.approx(1.0 - result["variants"]["random"]["test_accuracy"])
  assert (result["train_reviews"], result["validation_reviews"], result["test_reviews"]) == (
      36, 4, 40)
  assert result["token_coverage"] == 1.0 and result["config"]["max_length"] == 256
  assert result["seconds"] > 0
