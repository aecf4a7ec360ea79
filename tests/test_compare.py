"""benchmarks/compare.py: the token stream gensim gets, the report, and one tiny end-to-end run."""

import csv
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import compare
from tests.conftest import REPO_ROOT
from w2v_tf.corpus import Corpus


def _corpus() -> Corpus:
  types = ("movie", "film", "good", "bad")
  # Reviews: [0, 1, 2], [3], [], [1, 1, 0, 2].
  return Corpus(types=types, type_counts=np.array([3, 2, 2, 1]),
                token_ids=np.array([0, 1, 2, 3, 1, 1, 0, 2], np.int32),
                review_offsets=np.array([0, 3, 4, 4, 8], np.int64))


def test_stream_holds_the_chosen_reviews_as_word_lists(tmp_path):
  path = str(tmp_path / "stream.npz")
  tokens = compare.write_stream(_corpus(), np.array([True, False, True, True]), path)
  assert tokens == 7
  assert compare.load_stream(path) == [["movie", "film", "good"], [],
                                       ["film", "film", "movie", "good"]]


def _row(system, words_per_sec, total, wordsim, rss=500.0):
  return {"system": system, "setup_seconds": 1.0, "train_seconds": 10.0,
          "words_per_sec": words_per_sec, "peak_rss_mb": rss, "analogy_total": total,
          "analogy_semantic": total, "analogy_syntactic": total, "analogy_coverage": 0.5,
          "wordsim_spearman": wordsim}


def test_table_and_targets():
  rows = [_row("gensim", 300e3, 0.15, 0.60), _row("w2v-tf (sampled_softmax)", 450e3, 0.16, 0.59),
          _row("w2v-tf (nce)", 150e3, 0.10, 0.50, rss=3000.0)]
  for row in rows:
    row["ratio_to_gensim"] = row["words_per_sec"] / rows[0]["words_per_sec"]
  table = compare.format_table(rows).splitlines()
  assert len(table) == 5 and table[0].startswith("| system |")
  assert "| 450k | 1.50× |" in table[3] and "| 16.0% |" in table[3]
  targets = compare.check_targets(rows)
  assert all(targets["w2v-tf (sampled_softmax)"].values())
  assert not any(targets["w2v-tf (nce)"].values())


def _write_tiny_corpus(path, num_reviews=300, seed=0):
  """Reviews drawn from a small vocabulary (every word frequent enough for min_count=5)."""
  rng = np.random.default_rng(seed)
  letters = "abcdefghijklmnopqrstuvwxyz"
  vocab = ["king", "queen", "man", "woman", "boy", "girl"] + [
      letters[i % 26] + letters[i // 26] + "x" for i in range(144)]
  with open(path, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(["review", "sentiment"])
    for _ in range(num_reviews):
      words = rng.choice(vocab, size=int(rng.integers(20, 40)))
      writer.writerow([" ".join(words) + ".<br /><br />", "positive"])


@pytest.mark.slow
def test_end_to_end_on_a_tiny_corpus(tmp_path):
  csv_path = tmp_path / "reviews.csv"
  _write_tiny_corpus(csv_path)
  analogies = tmp_path / "analogies.txt"
  analogies.write_text(": family\nman woman king queen\nboy girl man woman\n"
                       ": gram-none\nking queen boy girl\n", encoding="utf-8")
  wordsim = tmp_path / "wordsim.tsv"
  wordsim.write_text("king\tqueen\t8.0\nman\twoman\t7.5\nboy\tgirl\t7.0\nking\tboy\t3.0\n",
                     encoding="utf-8")
  output, plot = tmp_path / "out" / "compare.json", tmp_path / "out" / "compare.png"
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  process = subprocess.run(
      [sys.executable, "-m", "benchmarks.compare", f"--train_csv={csv_path}",
       "--stopwords=none", "--epochs=1", "--embedding_dim=16", "--batch_size=256",
       f"--cache_dir={tmp_path / 'cache'}", f"--work_dir={tmp_path / 'work'}",
       f"--analogies={analogies}", f"--wordsim={wordsim}", f"--output_json={output}",
       f"--plot={plot}"],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240, check=False)
  assert process.returncode == 0, process.stderr[-3000:]
  result = json.loads(output.read_text(encoding="utf-8"))
  systems = [row["system"] for row in result["rows"]]
  assert systems == ["gensim", "w2v-tf (sampled_softmax)"]
  ratio = result["ratio"]["w2v-tf (sampled_softmax)"]
  assert math.isfinite(ratio) and ratio > 0
  tokens = result["corpus"]["train_tokens"]
  assert result["corpus"]["train_reviews"] == 297  # 1% held out, by both
  gensim_run = result["runs"]["gensim"][0]
  assert gensim_run["stream_tokens"] == tokens == gensim_run["raw_words"]
  for row in result["rows"]:
    assert row["words_per_sec"] == pytest.approx(tokens / row["train_seconds"])
    assert 0 < row["peak_rss_mb"] < 4096
    assert row["vocab_size"] >= 140
    assert row["analogy_coverage"] == 1.0
  assert set(result["targets"]["w2v-tf (sampled_softmax)"]) >= {"throughput_ratio_ge_1",
                                                                 "analogy_total_ge_gensim"}
  assert plot.stat().st_size > 1000
  assert "| gensim |" in process.stdout and "| w2v-tf (sampled_softmax) |" in process.stdout
