"""Tests for eval/similarity.py: parsing, correlations, agreement with gensim."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from eval import similarity
from w2v_tf.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(REPO, "..", "shared", "data")


def _wordsim_path():
  shared = os.path.join(SHARED_DATA, "eval", "wordsim353.tsv")
  if os.path.exists(shared):
    return shared
  try:
    from gensim.test.utils import datapath  # pylint: disable=import-outside-toplevel
    return datapath("wordsim353.tsv")
  except ImportError:
    pytest.skip("no wordsim353.tsv (../shared/data/eval) and no gensim")


def _write(path, text):
  path.write_text(text, encoding="utf-8")
  return str(path)


def test_read_wordsim_style(tmp_path):
  path = _write(tmp_path / "p.tsv", "# comment\n# Word 1\tWord 2\tHuman\nlove\tsex\t6.77\n"
                "tiger\tcat\t7.35\n\nbroken\tline\n\tcat\t3\nnumber\tword\tmany\nspace sep 2.5\n")
  pairs = similarity.read_word_pairs(path)
  assert pairs.pairs == [("love", "sex", 6.77), ("tiger", "cat", 7.35),
                         ("space", "sep", 2.5)]
  assert pairs.malformed_lines == 3
  assert pairs.first_malformed == (6, "broken\tline")


def test_read_simlex_with_header(tmp_path):
  path = _write(tmp_path / "simlex.txt",
                "word1\tword2\tPOS\tSimLex999\tconc(w1)\nold\tnew\tA\t1.58\t2.72\n"
                "smart\tintelligent\tA\t9.2\t1.75\n")
  assert similarity.read_word_pairs(path).pairs == [("old", "new", 1.58),
                                                    ("smart", "intelligent", 9.2)]
  assert similarity.read_word_pairs(path, score_column=4).pairs[0] == ("old", "new", 2.72)


def test_read_errors(tmp_path):
  with pytest.raises(UserError, match="not found"):
    similarity.read_word_pairs(tmp_path / "missing.tsv")
  with pytest.raises(UserError, match="is empty"):
    similarity.read_word_pairs(_write(tmp_path / "e.tsv", ""))
  with pytest.raises(UserError, match="holds no valid pair"):
    similarity.read_word_pairs(_write(tmp_path / "c.tsv", "# only\na b\n"))


@pytest.mark.parametrize("x,y", [
    ([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]),
    ([1, 1, 2, 2, 3, 10], [3, 3, 3, 1, 2, 0]),
    (list(np.random.default_rng(0).random(50)), list(np.random.default_rng(1).random(50))),
])
def test_correlations_match_scipy(x, y):
  stats = pytest.importorskip("scipy.stats")
  assert similarity.spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
  assert similarity.pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)


def _vocabulary(path, seed=0):
  """Random vectors for most WordSim words (some left out, some case variants), plus filler."""
  rng = np.random.default_rng(seed)
  pairs = similarity.read_word_pairs(path).pairs
  vocab = sorted({w for a, b, _ in pairs for w in (a, b)})
  words = []
  for word in vocab:
    roll = rng.random()
    if roll < 0.1:
      continue  # out of vocabulary
    words.append(word)
    if roll < 0.15:
      words.append(word.upper())  # a later case variant: not used
    elif roll < 0.2:
      words.insert(len(words) - 1, word.capitalize())  # an earlier one: used instead
  words = list(dict.fromkeys(words))  # "Palestinian" is in the file already capitalised
  words += [f"filler{i}" for i in range(200)]
  order = rng.permutation(len(words))
  words = [words[i] for i in order]
  return words, rng.standard_normal((len(words), 32)).astype(np.float32)


@pytest.mark.parametrize("restrict_vocab", [0, 300])
def test_matches_gensim_evaluate_word_pairs(restrict_vocab):
  gensim = pytest.importorskip("gensim")
  path = _wordsim_path()
  words, vectors = _vocabulary(path)
  kv = gensim.models.KeyedVectors(vectors.shape[1])
  kv.add_vectors(words, vectors)
  pearson, spearman, oov_ratio = kv.evaluate_word_pairs(path,
                                                        restrict_vocab=restrict_vocab or 300000)
  ours = similarity.evaluate_word_pairs(vectors, words, path, restrict_vocab=restrict_vocab)
  assert ours["spearman"] == pytest.approx(spearman[0], abs=1e-6)
  assert ours["pearson"] == pytest.approx(pearson[0], abs=1e-6)
  assert 100 * ours["oov_ratio"] == pytest.approx(oov_ratio, abs=1e-9)
  assert ours["pairs"] == 353 and 0 < ours["oov"] < 353


def test_matches_gensim_on_trained_vectors(tmp_path):
  gensim = pytest.importorskip("gensim")
  csv = os.path.join(SHARED_DATA, "imdb", "IMDB_Dataset.csv.gz")
  if not os.path.exists(csv):
    pytest.skip(f"IMDB data not found at {csv}")
  import pandas as pd  # pylint: disable=import-outside-toplevel
  import re  # pylint: disable=import-outside-toplevel
  reviews = pd.read_csv(csv, nrows=1500)["review"]
  sentences = [re.findall(r"[a-z]+", r.lower()) for r in reviews]
  model = gensim.models.Word2Vec(sentences, vector_size=32, min_count=2, workers=1, seed=3,
                                 epochs=2)
  path = str(tmp_path / "v.bin")
  model.wv.save_word2vec_format(path, binary=True)
  from w2v_tf.word_vectors import WordVectors  # pylint: disable=import-outside-toplevel
  loaded = WordVectors.load(path)
  words, vectors = list(loaded.words), loaded.vectors
  pairs_path = _wordsim_path()
  pearson, spearman, oov_ratio = model.wv.evaluate_word_pairs(pairs_path)
  ours = similarity.evaluate_word_pairs(vectors, words, pairs_path)
  assert ours["spearman"] == pytest.approx(spearman[0], abs=1e-6)
  assert ours["pearson"] == pytest.approx(pearson[0], abs=1e-6)
  assert 100 * ours["oov_ratio"] == pytest.approx(oov_ratio, abs=1e-9)


def test_identical_vectors_correlate_perfectly(tmp_path):
  path = _write(tmp_path / "p.tsv", "a\tb\t1\na\tc\t2\nb\tc\t3\na\td\t4\n")
  words = ["a", "b", "c", "d"]
  vectors = np.array([[1, 0], [0, 1], [1, 1.2], [1, 0.05]], dtype=np.float32)
  result = similarity.evaluate_word_pairs(vectors, words, path)
  assert result["spearman"] == pytest.approx(1.0)
  assert result["oov_ratio"] == 0.0 and result["used"] == 4
  with pytest.raises(UserError, match="no pair"):
    similarity.evaluate_word_pairs(vectors, words, path, restrict_vocab=1)


def test_binary_prints_and_writes_json(tmp_path):
  vectors_path = tmp_path / "v.txt"
  vectors_path.write_text("a 1 0\nb 0 1\nc 1 1.2\nd 1 0.05\n")  # GloVe layout
  pairs = _write(tmp_path / "p.tsv", "a\tb\t1\na\tc\t2\nb\tc\t3\na\tzz\t4\nbad\n")
  out_json = tmp_path / "r.json"
  run = subprocess.run([sys.executable, "-m", "eval.similarity", f"--vectors={vectors_path}",
                        f"--pairs={pairs}", f"--output_json={out_json}"], cwd=REPO,
                       capture_output=True, text=True, timeout=120, check=False)
  assert run.returncode == 0, run.stderr
  assert "p.tsv" in run.stdout and "3/4" in run.stdout
  assert "skipped 1 malformed lines" in run.stderr
  result = json.loads(out_json.read_text())["results"][0]
  assert result["spearman"] == pytest.approx(1.0) and result["oov"] == 1
