"""Bad input to the eval binaries: one `error:` line on stderr, exit 1 (2 for usage), no traceback.

Malformed lines in analogy / word-pair files are skipped with one `warning:` line and exit 0.
Each case runs the binary in a subprocess, as a user would.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORDS = ["man", "king", "woman", "queen", "good", "bad"]


def _text_vectors(words, dim=3, seed=0):
  rows = np.random.default_rng(seed).standard_normal((len(words), dim))
  return "".join(w + " " + " ".join(f"{v:.5f}" for v in row) + "\n" for w, row in zip(words, rows))


@pytest.fixture(name="files", scope="module")
def fixture_files(tmp_path_factory):
  """Good and bad input files; returns {name: path} for the argument templates."""
  tmp = tmp_path_factory.mktemp("inputs")
  files = {"tmp": str(tmp)}

  def write(name, content):
    path = tmp / name
    if isinstance(content, bytes):
      path.write_bytes(content)
    else:
      path.write_text(content, encoding="utf-8")
    files[name.replace(".", "_").replace("-", "_")] = str(path)
    return path

  write("good.txt", f"{len(WORDS)} 3\n" + _text_vectors(WORDS))
  write("empty.txt", "")
  write("broken.txt.gz", "this is not gzip data\n")
  write("dim.txt", "3 3\na 1 2 3\nb 1 2\nc 1 2 3\n")
  write("glove_dim.txt", "a 1 2 3\nb 1 2 3\nc 1 2\n")
  write("count.txt", "5 3\n" + _text_vectors(["a", "b", "c"]))
  record = lambda w: w.encode() + b" " + np.ones(2, "<f4").tobytes() + b"\n"
  write("trunc.bin", b"3 2\n" + record("a") + record("b"))
  write("q_good.txt", ": family\nman king woman queen\n")
  write("q_bad.txt", ": family\nman king woman queen\nman king\nthis line has five words\n")
  write("q_empty.txt", "")
  write("q_none.txt", ": family\nman king woman\n")
  write("p_good.tsv", "man\tking\t5\nwoman\tqueen\t6\ngood\tbad\t1\n")
  write("p_bad.tsv", "man\tking\t5\nwoman\tqueen\t6\ngood\tbad\t1\nman\n")
  write("p_empty.tsv", "")
  write("p_oov.tsv", "cat\tdog\t5\n")
  reviews = "".join(f'"review {i} good",{"positive" if i % 2 else "negative"}\n' for i in range(8))
  write("good.csv", "review,sentiment\n" + reviews)
  write("empty.csv", "")
  write("nocol.csv", "review,label\nx,positive\n")
  write("badlabel.csv", "review,sentiment\nx,positive\ny,meh\n")
  model_empty = tmp / "model_empty"
  model_empty.mkdir()
  files["model_empty"] = str(model_empty)
  model_mixed = tmp / "model_mixed"
  model_mixed.mkdir()
  (model_mixed / "vectors.txt").write_text(f"{len(WORDS)} 3\n" + _text_vectors(WORDS))
  (model_mixed / "vocab.tsv").write_text("".join(f"{w}\t9\n" for w in reversed(WORDS)))
  files["model_mixed"] = str(model_mixed)
  unreadable = write("unreadable.txt", f"{len(WORDS)} 3\n" + _text_vectors(WORDS))
  os.chmod(unreadable, 0)
  return files


_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
_Q = "--analogies={q_good_txt}"

# (id, module, args, exit code, text expected on the one stderr line)
CASES = [
    ("missing-vectors", "analogy", ["--vectors={tmp}/nope.bin", _Q], 1, "not found"),
    ("empty-vectors", "analogy", ["--vectors={empty_txt}", _Q], 1, "is empty"),
    ("broken-gzip", "analogy", ["--vectors={broken_txt_gz}", _Q], 1, "cannot read"),
    ("vectors-is-dir", "analogy", ["--vectors={tmp}", _Q], 1, "is a directory"),
    ("row-dim-vs-header", "analogy", ["--vectors={dim_txt}", _Q], 1,
     "dim.txt:3: 2 values, expected 3"),
    ("glove-row-dim", "analogy", ["--vectors={glove_dim_txt}", _Q], 1,
     "glove_dim.txt:3: 2 values, expected 3"),
    ("header-count", "analogy", ["--vectors={count_txt}", _Q], 1, "header says 5 words"),
    ("truncated-binary", "analogy", ["--vectors={trunc_bin}", _Q], 1, "record 3 of 3"),
    pytest.param("unreadable", "analogy", ["--vectors={unreadable_txt}", _Q], 1, "cannot read",
                 marks=pytest.mark.skipif(_ROOT, reason="root reads any file")),
    ("no-vectors-flag", "analogy", [_Q], 2, "give exactly one of --vectors"),
    ("both-vector-flags", "analogy", ["--vectors={good_txt}", "--model_dir={tmp}", _Q], 2,
     "give exactly one of --vectors"),
    ("stray-argument", "analogy", ["--vectors={good_txt}", _Q, "extra"], 2,
     "unexpected arguments"),
    ("bad-method", "analogy", ["--vectors={good_txt}", _Q, "--method=3cosavg"], 2,
     "--method=3cosavg"),
    ("bad-top-k", "analogy", ["--vectors={good_txt}", _Q, "--top_k=0"], 2, "--top_k=0"),
    ("bad-restrict", "analogy", ["--vectors={good_txt}", _Q, "--restrict_vocab=-1"], 2,
     "--restrict_vocab=-1"),
    ("missing-analogies", "analogy", ["--vectors={good_txt}", "--analogies={tmp}/nope.txt"], 1,
     "not found"),
    ("empty-analogies", "analogy", ["--vectors={good_txt}", "--analogies={q_empty_txt}"], 1,
     "is empty"),
    ("no-questions", "analogy", ["--vectors={good_txt}", "--analogies={q_none_txt}"], 1,
     "holds no question"),
    ("malformed-questions", "analogy", ["--vectors={good_txt}", "--analogies={q_bad_txt}"], 0,
     "skipped 2 malformed lines (first: line 3"),
    ("missing-model-dir", "analogy", ["--model_dir={tmp}/nope", _Q], 1, "not found"),
    ("model-dir-without-vectors", "analogy", ["--model_dir={model_empty}", _Q], 1,
     "has no vectors.bin or vectors.txt"),
    ("model-dir-vocab-mismatch", "analogy", ["--model_dir={model_mixed}", _Q], 1,
     "disagree at row 1"),
    ("missing-pairs", "similarity", ["--vectors={good_txt}", "--pairs={tmp}/nope.tsv"], 1,
     "not found"),
    ("empty-pairs", "similarity", ["--vectors={good_txt}", "--pairs={p_empty_tsv}"], 1,
     "is empty"),
    ("malformed-pairs", "similarity", ["--vectors={good_txt}", "--pairs={p_bad_tsv}"], 0,
     "skipped 1 malformed lines (first: line 4"),
    ("all-pairs-oov", "similarity", ["--vectors={good_txt}", "--pairs={p_oov_tsv}"], 1,
     "no pair"),
    ("similarity-bad-vectors", "similarity", ["--vectors={dim_txt}", "--pairs={p_good_tsv}"], 1,
     ":3: 2 values"),
    ("bad-score-column", "similarity", ["--vectors={good_txt}", "--pairs={p_good_tsv}",
                                        "--score_column=1"], 2, "--score_column=1"),
    ("analogy-needs-three", "neighbors", ["--vectors={good_txt}", "--analogy=man king"], 2,
     "give three words"),
    ("word-needs-one", "neighbors", ["--vectors={good_txt}", "--word=man king"], 2,
     "give one word"),
    ("word-oov", "neighbors", ["--vectors={good_txt}", "--word=emperor"], 1,
     "'emperor' is not in the vocabulary"),
    ("neighbors-bad-vectors", "neighbors", ["--vectors={trunc_bin}", "--word=a"], 1,
     "record 3 of 3"),
    ("missing-csv", "sentiment", ["--vectors={good_txt}", "--csv={tmp}/nope.csv"], 1,
     "not found"),
    ("empty-csv", "sentiment", ["--vectors={good_txt}", "--csv={empty_csv}"], 1, "is empty"),
    ("csv-without-column", "sentiment", ["--vectors={good_txt}", "--csv={nocol_csv}"], 1,
     "no column 'sentiment'"),
    ("csv-bad-label", "sentiment", ["--vectors={good_txt}", "--csv={badlabel_csv}"], 1,
     "row 3 has sentiment 'meh'"),
    ("sentiment-missing-vectors", "sentiment", ["--vectors={tmp}/nope", "--csv={good_csv}"], 1,
     "not found"),
    ("bad-max-reviews", "sentiment", ["--vectors={good_txt}", "--csv={good_csv}",
                                      "--max_reviews=-1"], 2, "--max_reviews=-1"),
    ("bad-max-length", "sentiment", ["--vectors={good_txt}", "--csv={good_csv}",
                                     "--max_length=0", "--epochs=0"], 2,
     "--epochs=0: must be 1 or more; --max_length=0: must be 1 or more"),
    ("bad-seed", "sentiment", ["--vectors={good_txt}", "--csv={good_csv}", "--seed=-1"], 2,
     "--seed=-1: must be in [0, 2**32)"),
    ("bad-variants", "sentiment", ["--vectors={good_txt}", "--csv={good_csv}",
                                   "--variants=frozen,bogus"], 2,
     "--variants=frozen,bogus: give some of frozen,random,trainable"),
]


def _case_id(case):
  return case.values[0] if hasattr(case, "values") else case[0]


@pytest.mark.parametrize("name,module,args,code,message", CASES, ids=map(_case_id, CASES))
def test_bad_input_gives_one_line(files, name, module, args, code, message):
  del name
  argv = [a.format(**files) for a in args]
  run = subprocess.run([sys.executable, "-m", f"eval.{module}", *argv], cwd=REPO,
                       capture_output=True, text=True, timeout=120, check=False)
  stderr_lines = run.stderr.strip().splitlines()
  assert "Traceback" not in run.stderr, run.stderr
  assert run.returncode == code, run.stderr
  assert len(stderr_lines) == 1, run.stderr
  prefix = "warning: " if code == 0 else "error: "
  assert stderr_lines[0].startswith(prefix), run.stderr
  assert message in stderr_lines[0]
