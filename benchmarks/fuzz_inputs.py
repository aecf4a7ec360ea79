"""Malformed input files against the binaries: does each end correctly or with one clear line?

From real files (a slice of the IMDB CSV, plain and gzipped; vectors for the words of an analogy
slice written with `WordVectors` as word2vec text and binary; that analogy slice) it makes
variants: truncations at several points (and at a line end), byte flips, other encodings
(UTF-16 with and without a byte-order mark, Latin-1, CP1252) and header lies (counts and
dimensions that promise more or less than the file holds, a renamed text column). It runs the
binaries that read each one: the trainer with tiny settings on the CSVs, `eval.analogy` and
`eval.similarity` on the vectors, `eval.analogy` on the analogy files. Each outcome is

  ok              exit 0 (with or without warnings);
  one clear line  a non-zero exit, exactly one line on stderr, no traceback;
  bad             anything else (a traceback, several lines, a timeout, a crash).

It prints a table and the counts and exits 1 if any outcome is bad.

  python -m benchmarks.fuzz_inputs [--limit 40] [--output_json out/fuzz.json]

The binaries run forked from one process that imported TensorFlow once (`tests/binaries.py`),
so TensorFlow's own start-up log lines (printed at import, before any of our code) are not
counted; `--nofork` runs plain subprocesses, which counts them too.
"""

from __future__ import annotations

import concurrent.futures
import csv
import dataclasses
import gzip
import io
import os
import random
import shutil
import subprocess
import sys
import time
from typing import Sequence

import numpy as np
from absl import flags

from benchmarks import common
from w2v_tf.errors import UsageError

_FLAGS = flags.FLAGS
_SHARED = os.path.join(os.path.dirname(common.REPO_ROOT), "shared", "data")
_TRAIN = ["--cache_dir=", "--max_reviews=100", "--epochs=1", "--embedding_dim=8", "--noprogress",
          "--analogies=none", "--stopwords=none", "--min_count=1", "--batch_size=64",
          "--sample_group_centers=64", "--num_sampled=8", "--nojit_compile",
          "--heldout_reviews=2"]


def define_flags() -> None:
  """Defines this script's flags (only where `python -m benchmarks.fuzz_inputs` runs it)."""
  flags.DEFINE_string("train_csv", os.path.join(_SHARED, "imdb", "IMDB_Dataset.csv.gz"),
                      "The real CSV the variants are cut from (its first --reviews rows).")
  flags.DEFINE_string("analogies", os.path.join(_SHARED, "eval", "questions-words.txt"),
                      "The real analogy file (its first 200 lines are used).")
  flags.DEFINE_integer("reviews", 200, "Rows of the CSV slice.")
  flags.DEFINE_integer("limit", 0, "Run at most N cases (0 = all), spread over the kinds.")
  flags.DEFINE_integer("seed", 0, "Seed of the byte flips and the vectors.")
  flags.DEFINE_integer("workers", 2, "Cases run at once.")
  flags.DEFINE_float("timeout", 300, "Seconds a case may take before it counts as bad.")
  flags.DEFINE_bool("fork", True, "Fork the binaries from a process that imported TensorFlow "
                    "(fast); --nofork runs plain subprocesses.")
  flags.DEFINE_string("work_dir", None, "Keep the inputs and outputs here (default: a temporary "
                      "folder, removed).")
  flags.DEFINE_string("output_json", None, "Write every case and the counts here.")


@dataclasses.dataclass
class Case:
  """One malformed input and one binary run on it.

  Attributes:
    name: base file and variant, e.g. "vectors.bin/truncate-50%".
    module: the binary.
    args: its command line ({out} is a fresh folder of the case).
    outcome: "ok", "one clear line" or "bad", once run.
    code: exit status; line: the first stderr line (or the reason it is bad).
  """
  name: str
  module: str
  args: list
  outcome: str = ""
  code: int | None = None
  line: str = ""
  seconds: float = 0.0


# --- Variants -----------------------------------------------------------------------------------


def truncations(data: bytes) -> list[tuple[str, bytes]]:
  """Cuts at 10%, 50%, 90% and one byte short of the end, and at a line end near the middle."""
  cuts = [(f"truncate-{p}%", data[:len(data) * p // 100]) for p in (10, 50, 90)]
  cuts.append(("truncate-last-byte", data[:-1]))
  line_end = data.find(b"\n", len(data) // 2)
  if line_end > 0:
    cuts.append(("truncate-at-line-end", data[:line_end + 1]))
  return cuts


def byte_flips(data: bytes, rng: random.Random, count: int = 3) -> list[tuple[str, bytes]]:
  """`count` variants, each with one byte inverted at a seeded position (one in the first 64)."""
  variants = []
  for i in range(count):
    position = rng.randrange(min(64, len(data))) if i == 0 else rng.randrange(len(data))
    flipped = bytearray(data)
    flipped[position] ^= 0xFF
    variants.append((f"flip-byte-{position}", bytes(flipped)))
  return variants


def encodings(text: str) -> list[tuple[str, bytes]]:
  """The text in UTF-16 (with and without a byte-order mark), and in Latin-1 and CP1252 after
  an accent is put into its first long word (so those differ from UTF-8)."""
  words = [w for w in text.split() if w.isalpha() and len(w) > 3]
  accented = text.replace(words[0], words[0][:-1] + "é", 1) if words else text
  return [("utf-16", text.encode("utf-16")), ("utf-16-le-no-bom", text.encode("utf-16-le")),
          ("latin-1", accented.encode("latin-1", errors="replace")),
          ("cp1252", (accented + "\u2019").encode("cp1252", errors="replace"))]


def vector_header_lies(data: bytes) -> list[tuple[str, bytes]]:
  """word2vec headers that disagree with the body: huge, larger, smaller count; other d; 0."""
  end = data.index(b"\n")
  count, dim = (int(x) for x in data[:end].split())
  body = data[end:]
  return [(f"header-{name}", f"{c} {d}".encode() + body) for name, c, d in (
      ("count-1e12", 10 ** 12, dim), ("count-plus-1", count + 1, dim),
      ("count-half", count // 2, dim), ("dim-plus-1", count, dim + 1),
      ("dim-1e11", count, 10 ** 11), ("zero", 0, dim))]


def csv_header_lies(text: str) -> list[tuple[str, bytes]]:
  """A renamed text column, a header only, and a header with no newline."""
  header, _, rest = text.partition("\n")
  return [("header-renamed-column", ("text" + header[6:] + "\n" + rest).encode()),
          ("header-only", (header + "\n").encode()), ("header-no-newline", header.encode())]


# --- The inputs ---------------------------------------------------------------------------------


def _csv_slice(path: str, rows: int) -> str:
  opener = gzip.open if path.endswith(".gz") else open
  with opener(path, "rt", encoding="utf-8", newline="") as f:
    reader = csv.reader(f)
    records = [row for _, row in zip(range(rows + 1), reader)]
  buffer = io.StringIO()
  csv.writer(buffer).writerows(records)  # the Kaggle dialect: minimal quoting, CRLF
  return buffer.getvalue()


def build_cases(work: str, train_csv: str, analogies: str, reviews: int, seed: int
                ) -> list[Case]:
  """Writes the base files and their variants under `work`; returns the cases, interleaved."""
  from w2v_tf.word_vectors import WordVectors  # pylint: disable=import-outside-toplevel
  rng = random.Random(seed)
  inputs = os.path.join(work, "inputs")
  os.makedirs(inputs, exist_ok=True)

  def write(name, data):
    path = os.path.join(inputs, name)
    with open(path, "wb") as f:
      f.write(data)
    return path

  csv_text = _csv_slice(train_csv, reviews)
  with open(analogies, encoding="utf-8") as f:
    analogy_text = "".join(f.readlines()[:200])
  words = list(dict.fromkeys(w.lower() for line in analogy_text.splitlines()
                             if not line.startswith(":") for w in line.split()))
  vectors = np.random.default_rng(seed).standard_normal((len(words), 16)).astype(np.float32)
  WordVectors(words, vectors).save(os.path.join(inputs, "base-vectors.txt"))
  WordVectors(words, vectors).save(os.path.join(inputs, "base-vectors.bin"), binary=True)
  base_analogies = write("base-analogies.txt", analogy_text.encode("utf-8"))
  base_pairs = write("base-pairs.tsv", "".join(
      f"{a}\t{b}\t{i % 10}\n" for i, (a, b) in enumerate(zip(words[::2], words[1::2]))).encode())
  with open(os.path.join(inputs, "base-vectors.txt"), "rb") as f:
    vectors_txt = f.read()
  with open(os.path.join(inputs, "base-vectors.bin"), "rb") as f:
    vectors_bin = f.read()
  csv_bytes = csv_text.encode("utf-8")
  csv_gz = gzip.compress(csv_bytes)

  groups: dict[str, list[tuple[str, bytes]]] = {
      "reviews.csv.gz": truncations(csv_gz) + byte_flips(csv_gz, rng),
      "reviews.csv": (truncations(csv_bytes) + byte_flips(csv_bytes, rng) +
                      encodings(csv_text) + csv_header_lies(csv_text)),
      "vectors.txt": (truncations(vectors_txt) + byte_flips(vectors_txt, rng) +
                      encodings(vectors_txt.decode()) + vector_header_lies(vectors_txt)),
      "vectors.bin": (truncations(vectors_bin) + byte_flips(vectors_bin, rng) +
                      vector_header_lies(vectors_bin)),
      "analogies.txt": (truncations(analogy_text.encode()) +
                        byte_flips(analogy_text.encode(), rng) + encodings(analogy_text)),
  }
  by_group: list[list[Case]] = [_cache_cases(work, write("cache-base.csv", csv_bytes), rng),
                                _model_dir_cases(work, write("model-base.csv", csv_bytes), rng)]
  for base, variants in groups.items():
    cases = []
    for variant, data in variants:
      stem, ext = base.split(".", 1)
      path = write(f"{stem}.{variant}.{ext}", data)
      name = f"{base}/{variant}"
      if base.startswith("reviews"):
        cases.append(Case(name, "w2v_tf.train",
                          [f"--train_csv={path}", "--model_dir={out}/model", *_TRAIN]))
      elif base.startswith("vectors"):
        cases.append(Case(name, "eval.analogy",
                          [f"--vectors={path}", f"--analogies={base_analogies}"]))
        cases.append(Case(name, "eval.similarity", [f"--vectors={path}", f"--pairs={base_pairs}"]))
      else:
        cases.append(Case(name, "eval.analogy", [
            f"--vectors={os.path.join(inputs, 'base-vectors.bin')}", f"--analogies={path}"]))
    by_group.append(cases)
  # Interleaved (one of each group in turn), so that --limit N still covers every kind.
  interleaved = []
  for i in range(max(len(g) for g in by_group)):
    interleaved.extend(g[i] for g in by_group if i < len(g))
  return interleaved


def _cache_cases(work: str, csv_path: str, rng: random.Random) -> list[Case]:
  """The corpus cache of `csv_path` (built here) damaged file by file: cut at 50% and one byte
  short, one byte flipped, emptied, deleted; each run through `w2v_tf.data` on a copy (the
  training chunks' damages are in tests/test_cache_check.py)."""
  from w2v_tf import corpus as corpus_lib  # pylint: disable=import-outside-toplevel
  from w2v_tf.sources import CorpusSpec  # pylint: disable=import-outside-toplevel
  base = os.path.join(work, "cache-base")
  corpus = corpus_lib.load(CorpusSpec(source=csv_path, max_documents=100), base, progress=False)
  files = ["tokens.i32", "offsets.i64", "types.txt", "counts.i64", "meta.json", "manifest.json"]
  cases = []
  for name in files:
    with open(os.path.join(corpus.path, name), "rb") as f:
      data = f.read()
    variants = [(v, d) for v, d in truncations(data) if v in ("truncate-50%", "truncate-last-byte")]
    variants += byte_flips(data, rng, 1) + [("empty", b""), ("deleted", None)]
    for variant, content in variants:
      cache = os.path.join(work, "caches", f"{name.replace('/', '_')}.{variant}")
      shutil.copytree(base, cache)
      target = os.path.join(cache, os.path.basename(corpus.path), name)
      if content is None:
        os.remove(target)
      else:
        with open(target, "wb") as f:
          f.write(content)
      cases.append(Case(f"cache/{name}/{variant}", "w2v_tf.data", [
          f"--train_csv={csv_path}", "--stopwords=none", "--max_reviews=100",
          f"--cache_dir={cache}", "--dump_tokens={out}/t.txt"]))
  return cases


def _model_dir_cases(work: str, csv_path: str, rng: random.Random) -> list[Case]:
  """A model dir trained here (1 epoch, a checkpoint every 5 steps, 3 kept) damaged file by
  file: `config.json`, `vocab.tsv`, the `checkpoint` state file and the newest checkpoint's
  index and data cut at 50%, one byte flipped, emptied, deleted, and a `.lock` of garbage; each
  variant exported (`w2v_tf.export`) and resumed to 2 epochs (`w2v_tf.train`), each on a copy."""
  base = os.path.join(work, "model-base")
  train = [f"--train_csv={csv_path}", *_TRAIN, "--checkpoint_every_steps=5"]
  subprocess.run([sys.executable, "-m", "w2v_tf.train", f"--model_dir={base}", *train],
                 check=True, capture_output=True, cwd=common.REPO_ROOT,
                 env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
  from w2v_tf import checkpoints  # pylint: disable=import-outside-toplevel
  newest = os.path.basename(checkpoints.read_state(base)[-1])
  files = ["config.json", "vocab.tsv", "checkpoint", f"{newest}.index",
           f"{newest}.data-00000-of-00001"]
  variants = []
  for name in files:
    with open(os.path.join(base, name), "rb") as f:
      data = f.read()
    variants += [(name, v, d) for v, d in truncations(data) if v == "truncate-50%"]
    variants += [(name, v, d) for v, d in byte_flips(data, rng, 1)]
    variants += [(name, "empty", b""), (name, "deleted", None)]
  variants.append((".lock", "garbage", b"\x00garbage\n{not json"))
  cases = []
  for name, variant, content in variants:
    for module, args in (("w2v_tf.export", ["--output_dir={out}/export"]),
                         ("w2v_tf.train", [*train, "--epochs=2"])):
      model_dir = os.path.join(work, "model-dirs", f"{name}.{variant}.{module}")
      shutil.copytree(base, model_dir)
      target = os.path.join(model_dir, name)
      if content is None:
        os.remove(target)
      else:
        with open(target, "wb") as f:
          f.write(content)
      cases.append(Case(f"model_dir/{name}/{variant}", module,
                        [f"--model_dir={model_dir}", *args]))
  return cases


# --- Running ------------------------------------------------------------------------------------


def classify(code: int, stderr: str) -> tuple[str, str]:
  """("ok" | "one clear line" | "bad", the line that says why) for one finished run."""
  lines = [line for line in stderr.splitlines() if line.strip()]
  first = lines[0] if lines else ""
  if "Traceback" in stderr:
    tail = [line for line in lines if line.strip()][-1]
    return "bad", f"traceback: {tail.strip()}"
  if code == 0:
    return "ok", first
  if code < 0 or code == 137:
    return "bad", f"killed or timed out (exit {code})"
  if len(lines) != 1:
    return "bad", f"{len(lines)} stderr lines: {' | '.join(lines[:3])}"
  return "one clear line", first


def run_cases(cases: Sequence[Case], work: str, workers: int, timeout: float, fork: bool
              ) -> None:
  """Runs every case (fills in outcome, code, line, seconds)."""
  sys.path.insert(0, common.REPO_ROOT)
  from tests.binaries import Runner  # pylint: disable=import-outside-toplevel
  env = {**os.environ,
         "PYTHONPATH": common.REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  if not fork:
    env["W2V_TEST_FORK"] = "0"
    os.environ["W2V_TEST_FORK"] = "0"
  runner = Runner(common.REPO_ROOT, env, workers=workers)
  outs = os.path.join(work, "outs")

  def run(index_case):
    index, case = index_case
    out = os.path.join(outs, str(index))
    os.makedirs(out)
    started = time.perf_counter()
    try:
      result = runner.run(case.module, [a.replace("{out}", out) for a in case.args],
                          timeout=timeout)
      case.code = result.returncode
      case.outcome, case.line = classify(result.returncode, result.stderr)
    except subprocess.TimeoutExpired:  # --nofork; the forked runner kills and says -9
      case.code, case.outcome, case.line = -9, "bad", f"timed out after {timeout:.0f} s"
    case.seconds = time.perf_counter() - started
    shutil.rmtree(out, ignore_errors=True)

  try:
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
      for _ in pool.map(run, enumerate(cases)):
        pass
  finally:
    runner.close()


def report(cases: Sequence[Case]) -> dict[str, int]:
  """Prints the table and the counts; returns the counts."""
  width = max(len(c.name) for c in cases)
  print(f"{'case':<{width}}  {'binary':<16} {'exit':>4}  {'outcome':<14}  first stderr line")
  for c in cases:
    print(f"{c.name:<{width}}  {c.module:<16} {c.code:>4}  {c.outcome:<14}  {c.line[:110]}")
  counts = {kind: sum(c.outcome == kind for c in cases) for kind in ("ok", "one clear line",
                                                                     "bad")}
  print(f"\n{len(cases)} cases: {counts['ok']} ok, {counts['one clear line']} one clear line, "
        f"{counts['bad']} bad")
  return counts


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise UsageError(f"unexpected arguments {' '.join(argv[1:])!r}")
  if _FLAGS.limit < 0 or _FLAGS.reviews < 10 or _FLAGS.workers < 1:
    raise UsageError("--limit must be >= 0, --reviews >= 10 and --workers >= 1")
  for path in (_FLAGS.train_csv, _FLAGS.analogies):
    if not os.path.isfile(path):
      raise UsageError(f"{path} not found: pass --train_csv / --analogies with the real files")
  with common.work_folder(_FLAGS.work_dir, "fuzz-inputs-") as work:
    cases = build_cases(work, _FLAGS.train_csv, _FLAGS.analogies, _FLAGS.reviews, _FLAGS.seed)
    if _FLAGS.limit:
      cases = cases[:_FLAGS.limit]
    started = time.perf_counter()
    run_cases(cases, work, _FLAGS.workers, _FLAGS.timeout, _FLAGS.fork)
    counts = report(cases)
    print(f"ran in {time.perf_counter() - started:.0f} s")
    if _FLAGS.output_json:
      from w2v_tf.fileio import atomic_write_json  # pylint: disable=import-outside-toplevel
      atomic_write_json(_FLAGS.output_json, {"counts": counts,
                                             "cases": [dataclasses.asdict(c) for c in cases]})
  if counts["bad"]:
    sys.exit(1)


if __name__ == "__main__":
  from w2v_tf.errors import run_main  # pylint: disable=import-outside-toplevel
  define_flags()
  run_main(main)
