"""benchmarks/compare.py: the token stream gensim gets, the report, the pWord2Vec row (with a fake
binary, and the real one when W2V_PWORD2VEC names it), and one tiny end-to-end run."""

import csv
import json
import math
import os
import stat
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
                document_offsets=np.array([0, 3, 4, 4, 8], np.int64))


def test_stream_holds_the_chosen_reviews_as_word_lists(tmp_path):
  path = str(tmp_path / "stream.npz")
  tokens = compare.write_stream(_corpus(), np.array([True, False, True, True]), path)
  assert tokens == 7
  assert compare.load_stream(path) == [["movie", "film", "good"], [],
                                       ["film", "film", "movie", "good"]]


def test_token_file_holds_the_same_reviews_as_text(tmp_path):
  stream = str(tmp_path / "stream.npz")
  compare.write_stream(_corpus(), np.array([True, False, True, True]), stream)
  info = compare.write_token_file(stream, str(tmp_path / "tokens.txt"))
  assert (tmp_path / "tokens.txt").read_text(encoding="utf-8") == (
      "movie film good\nfilm film movie good\n")  # the empty review left out
  assert info == {"path": str(tmp_path / "tokens.txt"), "tokens": 7, "lines": 2,
                  "unreadable_tokens": 0}


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
  assert set(targets) == {"w2v-tf (sampled_softmax)", "w2v-tf (nce)"}
  assert set(targets["w2v-tf (nce)"]) == {
      "words_per_sec_ge_1_5x_gensim", "analogy_total_ge_gensim", "wordsim_ge_gensim_minus_0_02",
      "peak_rss_le_1GiB"}
  assert all(targets["w2v-tf (sampled_softmax)"].values())
  assert not any(targets["w2v-tf (nce)"].values())


def test_table_and_targets_with_pword2vec():
  rows = [_row("gensim", 300e3, 0.15, 0.60), _row("pWord2Vec", 400e3, 0.14, 0.62, rss=520.0),
          _row("w2v-tf (sampled_softmax)", 470e3, 0.16, 0.605, rss=1100.0)]
  compare.add_ratios(rows)
  assert rows[2]["ratio_to_pword2vec"] == pytest.approx(1.175)
  assert rows[1]["ratio_to_gensim"] == pytest.approx(4 / 3)
  table = compare.format_table(rows).splitlines()
  assert table[3].startswith("| pWord2Vec |") and "| 400k | 1.33× | 1.00× |" in table[3]
  assert "| 470k | 1.57× | 1.18× | 1,100 |" in table[4]
  targets = compare.check_targets(rows)
  assert list(targets) == ["w2v-tf (sampled_softmax)"]  # the references get none
  assert targets["w2v-tf (sampled_softmax)"] == {
      "words_per_sec_ge_1_5x_gensim": True, "analogy_total_ge_gensim": True,
      "wordsim_ge_gensim_minus_0_02": True,
      "words_per_sec_ge_1_2x_pword2vec": False,  # 1.175x
      "analogy_total_ge_pword2vec": True, "wordsim_ge_pword2vec_minus_0_02": True,
      "peak_rss_le_1GiB": False}


def test_pword2vec_is_skipped_with_a_reason(tmp_path):
  assert "no --pword2vec" in compare.pword2vec_skip_reason(None)
  assert compare.pword2vec_skip_reason(str(tmp_path / "nope")).endswith("not found")
  plain = tmp_path / "plain"
  plain.write_text("", encoding="utf-8")
  for path in (plain, tmp_path):
    assert compare.pword2vec_skip_reason(str(path)).endswith("is not an executable file")
  assert compare.pword2vec_skip_reason(sys.executable) is None
  rows = [_row("gensim", 300e3, 0.15, 0.60), _row("w2v-tf (sampled_softmax)", 450e3, 0.16, 0.59)]
  compare.add_ratios(rows)
  assert "ratio_to_pword2vec" not in rows[1]
  table = compare.format_table(rows, {"pWord2Vec": "--pword2vec /x not found"}).splitlines()
  assert table[-1].startswith("| pWord2Vec | skipped: --pword2vec /x not found |")
  assert table[-1].count("|") == table[0].count("|")  # as many cells as the header


# A stand-in for pWord2Vec: its command line, its output (counts, then `\r` progress reports that
# date its training start) and a word2vec binary file with `</s>` first. It sleeps SETUP s before
# training, TRAIN s in training, SAVE s with its output file open, and holds ~150 MB meanwhile.
_FAKE_PWORD2VEC = """\
#!{python}
import collections, json, struct, sys, time
SETUP, TRAIN, SAVE = 0.3, 0.4, 0.2
args = sys.argv[1:]
options = dict(zip(args[::2], args[1::2]))
json.dump(args, open("argv.json", "w"))
if {fail}:
  print("ERROR: training data file not found!")
  sys.exit(1)
ballast = b"x" * (150 << 20)
print("number of threads: %s" % options["-threads"])
print("starting training using file: %s\\n" % options["-train"])
text = open(options["-train"], encoding="utf-8").read()
counts = collections.Counter(text.split())
kept = [w for w, c in counts.most_common() if c >= int(options["-min-count"])]
vocab = ["</s>"] + kept
train_words = text.count("\\n") + sum(counts[w] for w in kept)
print("Vocab size: %d" % len(vocab))
print("Words in train file: %d" % train_words)
time.sleep(SETUP)
start, total = time.time(), int(options["-iter"]) * train_words
for i in range(1, 5):
  time.sleep(TRAIN / 4)
  done = total * i // 5
  sys.stdout.write("\\rAlpha: %f  Progress: %.2f%%  Words/sec: %.2fk" % (
      0.025 * (1 - done / total), done / (total + 1) * 100, done / ((time.time() - start) * 1000)))
  sys.stdout.flush()
size = int(options["-size"])
with open(options["-output"], "wb") as f:
  f.write(b"%d %d\\n" % (len(vocab), size))
  for i, word in enumerate(vocab):
    f.write(word.encode() + b" " + struct.pack("<%df" % size, *[
        ((i * 7919 + j * 104729) % 1000) / 1000 - 0.5 for j in range(size)]) + b"\\n")
  time.sleep(SAVE)
"""


def _fake_pword2vec(folder, fail=False) -> str:
  path = folder / "pWord2Vec"
  path.write_text(_FAKE_PWORD2VEC.format(python=sys.executable, fail=fail), encoding="utf-8")
  path.chmod(path.stat().st_mode | stat.S_IXUSR)
  return str(path)


_FAMILY = ("king", "queen", "man", "woman", "boy", "girl")


def _family_corpus(num_reviews=200, seed=0) -> Corpus:
  """Reviews over the analogy words and 44 others, each far above min_count=5."""
  rng = np.random.default_rng(seed)
  types = _FAMILY + tuple(f"w{i}" for i in range(44))
  lengths = rng.integers(10, 30, size=num_reviews)
  token_ids = rng.integers(0, len(types), size=int(lengths.sum())).astype(np.int32)
  return Corpus(types=types, type_counts=np.bincount(token_ids, minlength=len(types)),
                token_ids=token_ids,
                document_offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))


def _write_eval_files(tmp_path):
  """Three analogy questions and four word pairs over the family words: their paths."""
  analogies = tmp_path / "analogies.txt"
  analogies.write_text(": family\nman woman king queen\nboy girl man woman\n"
                       ": gram-none\nking queen boy girl\n", encoding="utf-8")
  wordsim = tmp_path / "wordsim.tsv"
  wordsim.write_text("king\tqueen\t8.0\nman\twoman\t7.5\nboy\tgirl\t7.0\nking\tboy\t3.0\n",
                     encoding="utf-8")
  return analogies, wordsim


def _eval_files(tmp_path):
  from eval.analogy import read_analogies  # pylint: disable=import-outside-toplevel
  from eval.similarity import read_word_pairs  # pylint: disable=import-outside-toplevel
  analogies, wordsim = _write_eval_files(tmp_path)
  return read_analogies(str(analogies)), read_word_pairs(str(wordsim))


def _pword2vec_run(tmp_path, binary, corpus, epochs=2, threads=3, embedding_dim=16, negative=7):
  """Writes the corpus's stream and token file, runs `binary` as the pWord2Vec row's worker."""
  work = tmp_path / "work"
  work.mkdir()
  stream = str(work / "stream.npz")
  tokens = compare.write_stream(corpus, np.ones(corpus.num_reviews, bool), stream)
  token_file = compare.write_token_file(stream, str(work / "tokens.txt"))
  run_dir = str(work / "pword2vec-r0")
  spec = compare.pword2vec_spec(binary, token_file["path"], run_dir, embedding_dim=embedding_dim,
                                window=5, negative=negative, subsample=1e-3, min_count=5,
                                epochs=epochs, threads=threads, alpha=0.025)
  analogies, word_pairs = _eval_files(tmp_path)
  result = compare.measure(compare.PWORD2VEC, "pword2vec", spec, run_dir, spec["vectors_path"],
                           tokens, epochs, analogies, word_pairs, restrict_vocab=30000)
  return tokens, spec, result


def test_pword2vec_row_with_a_fake_binary(tmp_path):
  corpus = _family_corpus()
  tokens, spec, result = _pword2vec_run(tmp_path, _fake_pword2vec(tmp_path), corpus)
  argv = json.loads((tmp_path / "work" / "pword2vec-r0" / "argv.json").read_text())
  options = dict(zip(argv[::2], argv[1::2]))
  assert options == {"-train": "../tokens.txt", "-output": "vectors.bin", "-binary": "1",
                     "-size": "16", "-window": "5", "-negative": "7", "-sample": "0.001",
                     "-min-count": "5", "-iter": "2", "-threads": "3", "-batch-size": "11",
                     "-alpha": "0.025", "-debug": "2"}
  assert result["command"][1:] == argv
  # The child's wall clock, split at its training start (dated by its first report) and at its
  # output file's creation; words/s counts corpus tokens like every other row.
  assert not result["train_seconds_includes_setup"] and result["progress_reports"] == 4
  # (Lower bounds: its sleeps; upper bounds loose, for a busy machine.)
  assert 0.3 <= result["setup_seconds"] < 3.0
  assert 0.4 <= result["train_seconds"] < 0.4 + 1.0
  assert 0.2 <= result["save_seconds"] < 0.2 + 1.0
  assert result["binary_seconds"] == pytest.approx(
      result["setup_seconds"] + result["train_seconds"] + result["save_seconds"])
  assert result["process_seconds"] > result["binary_seconds"]
  assert result["words_per_sec"] == pytest.approx(tokens * 2 / result["train_seconds"])
  assert result["train_words_reported"] == tokens + corpus.num_reviews  # + one </s> per line
  # The child's ballast and interpreter, whether this wrapper (the test process, which may have
  # loaded TensorFlow for other tests) peaked below or above it.
  assert 150 <= result["peak_rss_mb"] < 150 + 100
  assert result["wrapper_peak_rss_mb"] > 0
  # Scored by the same evaluation, without its untrained </s> row.
  assert result["vocab_size"] == 50 and result["eval"]["vocab_size"] == 50
  assert result["eval"]["dropped_words"] == ["</s>"]
  assert result["eval"]["analogy"]["total"]["seen"] == 3
  assert math.isfinite(result["eval"]["wordsim"]["spearman"])
  row = compare.summarize(compare.PWORD2VEC, [result])
  assert row["analogy_coverage"] == 1.0 and row["vocab_size"] == 50
  rows = [dict(row, system="gensim"), row]
  compare.add_ratios(rows)
  assert "| pWord2Vec |" in compare.format_table(rows)


def test_pword2vec_failure_is_one_line(tmp_path):
  with pytest.raises(compare.UserError, match="the pWord2Vec run failed"):
    _pword2vec_run(tmp_path, _fake_pword2vec(tmp_path, fail=True), _family_corpus(20))
  log = tmp_path / "work" / "pword2vec-r0" / "pword2vec.log"
  assert "training data file not found" in log.read_text()


def test_pword2vec_paths_fit_its_buffers(tmp_path):
  spec = compare.pword2vec_spec("/bin/true", str(tmp_path / ("x" * 120) / "tokens.txt"),
                                str(tmp_path / "run"), embedding_dim=8, window=2, negative=1,
                                subsample=0, min_count=1, epochs=1, threads=1, alpha=0.025)
  assert spec["batch_size"] == 5  # 2 * window + 1
  with pytest.raises(compare.UserError, match="longer than the 99 bytes"):
    compare.pword2vec_command(spec)


@pytest.mark.slow
@pytest.mark.skipif(not os.access(os.environ.get("W2V_PWORD2VEC", ""), os.X_OK),
                    reason="W2V_PWORD2VEC does not name a pWord2Vec binary "
                    "(bash ../shared/anchors/pword2vec/build.sh DIR)")
def test_the_real_pword2vec_on_a_tiny_corpus(tmp_path):
  corpus = _family_corpus(num_reviews=2000)  # > 10,000 words a thread: it reports progress
  tokens, _, result = _pword2vec_run(tmp_path, os.environ["W2V_PWORD2VEC"], corpus, epochs=1,
                                     threads=2, embedding_dim=20, negative=5)
  assert not result["train_seconds_includes_setup"] and result["progress_reports"] >= 1
  assert result["train_words_reported"] == tokens + corpus.num_reviews
  assert result["words_per_sec"] == pytest.approx(tokens / result["train_seconds"])
  assert 0 < result["train_seconds"] < result["binary_seconds"]
  assert result["peak_rss_mb"] > 381  # its 1e8-entry unigram table alone is 381 MiB
  assert result["eval"]["dropped_words"] == ["</s>"] and result["eval"]["vocab_size"] == 50
  assert result["eval"]["analogy"]["total"]["coverage"] == 1.0


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
  analogies, wordsim = _write_eval_files(tmp_path)
  output, plot = tmp_path / "out" / "compare.json", tmp_path / "out" / "compare.png"
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  process = subprocess.run(
      [sys.executable, "-m", "benchmarks.compare", f"--train_csv={csv_path}",
       "--stopwords=none", "--epochs=1", "--embedding_dim=16", "--batch_size=256",
       f"--cache_dir={tmp_path / 'cache'}", f"--work_dir={tmp_path / 'work'}",
       f"--analogies={analogies}", f"--wordsim={wordsim}", f"--output_json={output}",
       f"--plot={plot}", f"--pword2vec={tmp_path / 'no-pword2vec'}"],
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
  assert set(result["targets"]["w2v-tf (sampled_softmax)"]) == {
      "words_per_sec_ge_1_5x_gensim", "analogy_total_ge_gensim", "wordsim_ge_gensim_minus_0_02",
      "peak_rss_le_1GiB"}
  reason = f"--pword2vec {tmp_path / 'no-pword2vec'} not found"
  assert result["skipped"] == {"pWord2Vec": reason}
  assert f"pWord2Vec: skipped: {reason}" in process.stderr
  assert f"| pWord2Vec | skipped: {reason} |" in process.stdout
  assert plot.stat().st_size > 1000
  assert "| gensim |" in process.stdout and "| w2v-tf (sampled_softmax) |" in process.stdout


def test_suite_plans_each_loss_against_gensims_same_loss_and_one_core(monkeypatch):
  monkeypatch.setattr(compare, "FLAGS", type("F", (), {"negative": 5})())
  rows = compare.plan_rows(["sampled_softmax"], epochs=5, suite_epochs=2, with_pword2vec=True)
  by_name = {row["name"]: row for row in rows}
  assert [row["name"] for row in rows[:3]] == ["gensim", "pWord2Vec", "w2v-tf (sampled_softmax)"]
  assert all(row["epochs"] == 5 for row in rows[:3])
  assert all(row["epochs"] == 2 for row in rows[3:])
  ns = by_name["w2v-tf (negative_sampling) · 2 epochs"]
  assert ns["peers"] == {"gensim": "gensim · 2 epochs"} and ns["changes"] == {"num_sampled": 5}
  assert ns["goals"]["analogy_margin"] == {"gensim": -0.5}
  hs = by_name["w2v-tf (hierarchical_softmax) · 2 epochs"]
  assert by_name[hs["peers"]["gensim"]]["hs"] is True
  cbow = by_name["w2v-tf CBOW (sampled_softmax) · 2 epochs"]
  assert cbow["changes"] == {"model": "cbow"} and by_name[cbow["peers"]["gensim"]]["sg"] == 0
  one = by_name["w2v-tf (sampled_softmax) · 2 epochs · 1 core"]
  assert one["cpus"] == [0] and one["peers"] == {"gensim": "gensim · 2 epochs · 1 core",
                                                 "pword2vec": "pWord2Vec · 2 epochs · 1 core"}
  assert by_name["pWord2Vec · 2 epochs · 1 core"]["cpus"] == [0]
  # At the headline's epochs the suite reuses its rows instead of running them twice.
  same = compare.plan_rows(["sampled_softmax"], epochs=2, suite_epochs=2, with_pword2vec=False)
  names = [row["name"] for row in same]
  assert len(names) == len(set(names)) and "pWord2Vec" not in " ".join(names)
  assert "w2v-tf (sampled_softmax) · 1 core" in names


def test_suite_targets_compare_each_row_with_its_peers():
  rows = [_row("gensim", 300e3, 0.15, 0.60), _row("gensim hs=1", 200e3, 0.10, 0.55),
          _row("w2v-tf (hierarchical_softmax)", 210e3, 0.08, 0.50),
          _row("gensim · 1 core", 180e3, 0.15, 0.60),
          _row("w2v-tf (sampled_softmax)", 450e3, 0.16, 0.60),
          _row("w2v-tf (sampled_softmax) · 1 core", 300e3, 0.16, 0.60)]
  rows[2].update(peers={"gensim": "gensim hs=1"},
                 goals={"speed": {"gensim": 1.0}, "analogy_margin": {"gensim": -1.5},
                        "wordsim": False, "rss": False})
  compare.add_ratios(rows)
  assert rows[2]["ratio_to_gensim"] == pytest.approx(1.05)  # against hs=1, not the headline
  targets = compare.check_targets(rows)
  assert targets["w2v-tf (hierarchical_softmax)"] == {
      "words_per_sec_ge_1x_gensim": True,
      "analogy_total_ge_gensim_minus_1_5_points": False}  # 8.0% < 10.0% - 1.5
  assert "gensim hs=1" not in targets and "gensim · 1 core" not in targets
  speedups = compare.core_speedups(rows)
  assert speedups == {"gensim": pytest.approx(300 / 180), "w2v-tf (sampled_softmax)": 1.5}


@pytest.mark.slow
def test_suite_end_to_end_on_a_tiny_corpus(tmp_path):
  csv_path = tmp_path / "reviews.csv"
  _write_tiny_corpus(csv_path)
  analogies, wordsim = _write_eval_files(tmp_path)
  output = tmp_path / "compare.json"
  process = subprocess.run(
      [sys.executable, "-m", "benchmarks.compare", f"--train_csv={csv_path}",
       "--stopwords=none", "--epochs=1", "--suite", "--suite_epochs=1", "--embedding_dim=16",
       "--batch_size=256", f"--cache_dir={tmp_path / 'cache'}", f"--analogies={analogies}",
       f"--wordsim={wordsim}", f"--output_json={output}"],
      cwd=REPO_ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), capture_output=True,
      text=True, timeout=600, check=False)
  assert process.returncode == 0, process.stderr[-3000:]
  result = json.loads(output.read_text(encoding="utf-8"))
  systems = {row["system"]: row for row in result["rows"]}
  assert set(systems) == {
      "gensim", "w2v-tf (sampled_softmax)", "w2v-tf (negative_sampling)", "gensim hs=1",
      "w2v-tf (hierarchical_softmax)", "gensim CBOW", "w2v-tf CBOW (sampled_softmax)",
      "gensim · 1 core", "w2v-tf (sampled_softmax) · 1 core"}
  assert systems["gensim · 1 core"]["cores"] == 1
  assert set(result["speedup_all_cores_over_one"]) == {"gensim", "w2v-tf (sampled_softmax)"}
  assert set(result["targets"]["w2v-tf (negative_sampling)"]) == {
      "words_per_sec_ge_1x_gensim", "analogy_total_ge_gensim_minus_0_5_points"}
  one_core = result["runs"]["w2v-tf (sampled_softmax) · 1 core"][0]
  assert one_core["cpus"] == [0]
  assert "all cores / one core" in process.stdout
