"""This project's trainer against gensim's `Word2Vec` (and Intel's pWord2Vec), side by side on the
same cleaned token stream.

  python -m benchmarks.compare --train_csv ../shared/data/imdb/IMDB_Dataset.csv.gz \
      --analogies ../shared/data/eval/questions-words.txt \
      --wordsim ../shared/data/eval/wordsim353.tsv \
      --output_json out/compare.json --plot out/compare.png \
      --pword2vec ../pw2v_build/pWord2Vec  # optional (../shared/anchors/pword2vec/build.sh)

The corpus is cleaned once with this project's pipeline (`w2v_tf.corpus.load_corpus`, cached).
Both systems then train on the same reviews: the trainer holds `--heldout_reviews` of them out
for its held-out loss (default 1%), and gensim is given exactly the other ones, in corpus order,
as an in-memory list of word lists (the cleaned tokens before min_count and subsampling; gensim
applies `min_count` and `sample` itself). Each run is its own subprocess (this module with
`--worker`), so each reports its own peak RSS, and gensim's process never imports TensorFlow.

Settings shared by both: skip-gram, `--epochs`, `--embedding_dim`, `--window`, `--min_count`,
`--subsample`, `--seed`; gensim also gets `negative=--negative`, `hs=0` (with `--gensim_hs`:
`hs=1, negative=0`, the peer of `--losses=hierarchical_softmax`), `workers=--workers`
(default: the cores this process may use) and its default learning rate; this project trains
each loss in `--losses` (default: its default loss, sampled softmax) with its own defaults
unless `--batch_size`, `--num_sampled`, `--learning_rate`, `--sample_group_centers`,
`--optimizer`, `--jit_compile` or `--negatives_per` are given.

Timing: gensim's `build_vocab` and this project's trainer setup (corpus cache hit, vocabulary,
held-out set, model) are reported as "setup"; words/s counts only the training wall time
(gensim's `train`; the trainer's whole `run` loop with its periodic loss evaluation and
checkpoints, without the final export). words/s = corpus tokens of the training reviews
(cleaned, before min_count and subsampling) x epochs / train seconds, the same numerator for
both. `--repeats N` runs every system N times (alternating) and reports medians.

pWord2Vec (`--pword2vec PATH`, a binary built by `shared/anchors/pword2vec/build.sh`; its row is
skipped with a note when the flag is absent or the path is not an executable file) trains on the
same reviews written as text (`write_token_file`: one review per line, tokens separated by
spaces, empty reviews left out) with gensim's settings (`-size --embedding_dim -window --window
-negative --negative -sample --subsample -min-count --min_count -iter --epochs -threads
--workers -alpha --gensim_alpha -batch-size --pword2vec_batch_size -binary 1`). Its worker runs
the binary as a child process and splits the child's wall clock into setup (vocabulary pass,
tables, loading the text), train (from the start of its training loop, dated by its first
progress report, to the moment it creates its output file) and save; peak RSS is the child's.

Every result's vectors are written in word2vec binary format and read back with
`WordVectors.load`, then scored with `eval.analogy.evaluate_analogies` (3CosAdd,
`--restrict_vocab`) and `eval.similarity.evaluate_word_pairs` (Spearman). See benchmarks/README.md.
"""

from __future__ import annotations

import os
import re
import resource
import shlex
import subprocess
import sys
import threading
import time
from typing import Sequence

from absl import flags
import numpy as np

from benchmarks import common
from benchmarks.common import format_value
from eval import cli
from w2v_tf import config, config_flags
from w2v_tf.errors import UsageError, UserError, run_main

GENSIM = "gensim"
PWORD2VEC = "pWord2Vec"
# pWord2Vec writes its sentence-boundary token first, with its random initial vector (never
# trained); it is left out before scoring.
PWORD2VEC_EOS = "</s>"
# pWord2Vec copies -train / -output into char[100] buffers with strcpy: longer paths overflow.
PWORD2VEC_MAX_PATH = 99
# ReadWord keeps at most 98 bytes of a word (longer ones lose their middle).
PWORD2VEC_MAX_WORD = 98
OUR_LOSSES = config.LOSSES
_STREAM_FILE = "stream.npz"
_TOKEN_FILE = "tokens.txt"  # the same reviews as text, for pWord2Vec


# This project's settings, as the trainer's own flags (same names, defaults and help): the shared
# data and training settings apply to gensim too.
OUR_FIELDS = ("train_csv", "text_column", "max_reviews", "stopwords", "cache_dir",
              "heldout_reviews", "epochs", "embedding_dim", "window", "min_count", "subsample",
              "seed", "batch_size", "num_sampled", "learning_rate", "sample_group_centers",
              "optimizer", "jit_compile", "negatives_per")


def define_flags() -> None:
  """Defines this binary's flags (when it runs as `python -m benchmarks.compare`)."""
  config_flags.define_flags(flags.FLAGS, names=OUR_FIELDS)
  # gensim only.
  flags.DEFINE_integer("negative", 5, "gensim: negative samples per pair.")
  flags.DEFINE_integer("workers", common.available_cores(),
                       "gensim: worker threads (default: the cores this process may use).")
  flags.DEFINE_float("gensim_alpha", 0.025, "gensim: initial learning rate (its default).")
  flags.DEFINE_bool("gensim_hs", False, "gensim: hierarchical softmax (hs=1, negative=0) instead "
                    "of negative sampling; the peer of --losses=hierarchical_softmax.")
  # pWord2Vec (optional).
  flags.DEFINE_string("pword2vec", None,
                      "Intel's pWord2Vec binary (bash ../shared/anchors/pword2vec/build.sh DIR): "
                      "a third row, with gensim's settings (--negative, --workers as -threads, "
                      "--gensim_alpha); absent or not executable: the row is skipped.")
  flags.DEFINE_integer("pword2vec_batch_size", None,
                       "pWord2Vec: -batch-size (default 2 * --window + 1, as its authors "
                       "recommend: 11).")
  # This project only.
  flags.DEFINE_list("losses", ["sampled_softmax"],
                    f"Losses of this project to train, each a row ({', '.join(OUR_LOSSES)}).")
  flags.DEFINE_bool("suite", False,
                    "Also run, at --suite_epochs, each of our losses against gensim's same loss "
                    "(negative sampling against sg=1 negative=--negative, hierarchical softmax "
                    "against hs=1, CBOW against sg=0) and every system on one core "
                    "(sched_setaffinity to CPU 0, gensim workers=1, pWord2Vec -threads 1) "
                    "beside all cores; the JSON gets each row's peers, targets and the "
                    "speed-up of all cores over one.")
  flags.DEFINE_integer("suite_epochs", 2, "Epochs of the --suite rows.")
  # Evaluation and output.
  flags.DEFINE_string("analogies", None,
                      "Analogy file (default: data/questions-words.txt, else gensim's copy).")
  flags.DEFINE_string("wordsim", None,
                      "Word-pair file (default: data/wordsim353.tsv, else gensim's copy).")
  flags.DEFINE_integer("restrict_vocab", 30000, "Analogy candidates: the first N words (0 = all).")
  flags.DEFINE_integer("repeats", 1, "Runs per system (medians are reported).")
  flags.DEFINE_string("work_dir", None, "Keep the runs (model dirs, gensim vectors) here; "
                      "default: a temporary folder, removed.")
  flags.DEFINE_string("output_json", None, "Write all results as JSON here.")
  flags.DEFINE_string("plot", None, "Write a bar chart (PNG) here.")
  # Internal: one training run in this process (what the parent starts).
  flags.DEFINE_enum("worker", None, ["gensim", "ours", "pword2vec"],
                    "Internal: run one trainer from --worker_spec and write its result.")
  flags.DEFINE_string("worker_spec", None, "Internal: the worker's JSON spec.")


FLAGS = flags.FLAGS


# --- Workers (one training run each, in a subprocess) ----------------------------------------


def load_stream(path: str) -> list[list[str]]:
  """The training reviews written by `write_stream`, as lists of words (no TensorFlow)."""
  with np.load(path) as data:
    types = np.array(bytes(data["types"]).decode("utf-8").split("\n"), dtype=object)
    token_ids, offsets = data["token_ids"], data["offsets"]
  return [types[token_ids[start:end]].tolist() for start, end in zip(offsets[:-1], offsets[1:])]


def gensim_worker(spec: dict) -> dict:
  """Trains gensim's Word2Vec on the stream; writes word2vec binary vectors."""
  import gensim  # pylint: disable=import-outside-toplevel
  from gensim.models import Word2Vec  # pylint: disable=import-outside-toplevel
  started = time.perf_counter()
  sentences = load_stream(spec["stream_path"])
  stream_seconds = time.perf_counter() - started
  tokens = sum(len(s) for s in sentences)
  model = Word2Vec(vector_size=spec["embedding_dim"], window=spec["window"],
                   min_count=spec["min_count"], sample=spec["subsample"], sg=int(spec.get("sg", 1)),
                   hs=int(spec.get("hs", 0)),
                   negative=0 if spec.get("hs") else spec["negative"], workers=spec["workers"], alpha=spec["alpha"],
                   seed=spec["seed"])
  started = time.perf_counter()
  model.build_vocab(sentences)
  setup_seconds = time.perf_counter() - started
  started = time.perf_counter()
  effective_words, raw_words = model.train(sentences, total_examples=len(sentences),
                                           total_words=tokens, epochs=spec["epochs"])
  train_seconds = time.perf_counter() - started
  model.wv.save_word2vec_format(spec["vectors_path"], binary=True)
  return {"setup_seconds": setup_seconds, "train_seconds": train_seconds,
          "stream_load_seconds": stream_seconds,
          "vocab_size": len(model.wv.index_to_key), "stream_tokens": tokens,
          "raw_words": int(raw_words), "effective_words": int(effective_words),
          "version": f"gensim {gensim.__version__}"}


def ours_worker(spec: dict) -> dict:
  """Runs this project's trainer on the spec's experiment config; its vectors.bin is the result."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from w2v_tf.build import build_trainer  # pylint: disable=import-outside-toplevel
  experiment = config.ExperimentConfig.from_dict(spec["experiment"])
  log = lambda message: print(f"[{spec['name']}] {message}", file=sys.stderr, flush=True)
  started = time.perf_counter()
  trainer = build_trainer(experiment, log=log)
  setup_seconds = time.perf_counter() - started
  summary = trainer.run()
  if summary.interrupted:
    raise UserError("training was interrupted")
  return {"setup_seconds": setup_seconds, "train_seconds": summary.train_seconds,
          "vocab_size": len(trainer.data.vocab),
          "train_tokens_in_vocab": trainer.data.tokens.num_tokens,
          "trainer_words_per_sec": summary.words_per_sec, "steps": summary.step,
          "learning_rate": trainer.experiment.train.learning_rate,
          "num_sampled": trainer.experiment.model.num_sampled,
          "negatives_per": trainer.experiment.model.negatives_per,
          "version": f"tensorflow {tf.__version__}"}


# pWord2Vec's progress report (`\rAlpha: %f  Progress: %.2f%%  Words/sec: %.2fk`, every 10,000
# words of a thread) and the counts it prints once the vocabulary is built.
_PW2V_PROGRESS = re.compile(
    rb"Alpha: *([-+.0-9eE]+) +Progress: *([.0-9]+)% +Words/sec: *([.0-9]+)k")
_PW2V_VOCAB = re.compile(rb"Vocab size: *([0-9]+)")
_PW2V_TRAIN_WORDS = re.compile(rb"Words in train file: *([0-9]+)")
_PW2V_ECHO_SECONDS = 10.0  # a progress line on stderr at most this often
_PW2V_POLL_SECONDS = 0.005  # how often the worker looks for the output file (the end of training)


def pword2vec_skip_reason(path: str | None) -> str | None:
  """Why the pWord2Vec row cannot run (None: it can)."""
  if not path:
    return "no --pword2vec binary given (build one: bash ../shared/anchors/pword2vec/build.sh DIR)"
  if not os.path.exists(path):
    return f"--pword2vec {path} not found"
  if not os.path.isfile(path) or not os.access(path, os.X_OK):
    return f"--pword2vec {path} is not an executable file"
  return None


def pword2vec_spec(binary: str, train_path: str, run_dir: str, *, embedding_dim: int, window: int,
                   negative: int, subsample: float, min_count: int, epochs: int, threads: int,
                   alpha: float, batch_size: int | None = None) -> dict:
  """The pWord2Vec worker's spec: the binary, its text input, and gensim's settings."""
  run_dir = os.path.abspath(run_dir)
  return {"binary": os.path.abspath(binary), "train_path": os.path.abspath(train_path),
          "run_dir": run_dir, "vectors_path": os.path.join(run_dir, "vectors.bin"),
          "log_path": os.path.join(run_dir, "pword2vec.log"), "embedding_dim": embedding_dim,
          "window": window, "negative": negative, "subsample": subsample,
          "min_count": min_count, "epochs": epochs, "threads": threads, "alpha": alpha,
          "batch_size": batch_size or 2 * window + 1}


def pword2vec_command(spec: dict) -> list[str]:
  """pWord2Vec's command line; it runs in `run_dir`, so its paths are relative to that."""
  train = os.path.relpath(spec["train_path"], spec["run_dir"])
  output = os.path.relpath(spec["vectors_path"], spec["run_dir"])
  for flag, path in (("-train", train), ("-output", output)):
    if len(path.encode("utf-8")) > PWORD2VEC_MAX_PATH:
      raise UserError(f"pWord2Vec's {flag} path {path} is longer than the "
                      f"{PWORD2VEC_MAX_PATH} bytes it can hold: use a shorter --work_dir")
  return [spec["binary"], "-train", train, "-output", output, "-binary", "1",
          "-size", str(spec["embedding_dim"]), "-window", str(spec["window"]),
          "-negative", str(spec["negative"]), "-sample", f"{spec['subsample']:g}",
          "-min-count", str(spec["min_count"]), "-iter", str(spec["epochs"]),
          "-threads", str(spec["threads"]), "-batch-size", str(spec["batch_size"]),
          "-alpha", f"{spec['alpha']:g}", "-debug", "2"]


def _vmhwm_mb(pid: int) -> float | None:
  """VmHWM of another (running) process, in MiB; None when it cannot be read."""
  try:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
      for line in f:
        if line.startswith("VmHWM:"):
          return int(line.split()[1]) / 1024
  except (OSError, ValueError):
    pass
  return None


def pword2vec_worker(spec: dict) -> dict:
  """Runs the pWord2Vec binary as a child process; times its phases and measures its memory.

  Timeline of the child's wall clock: setup (start to the start of its training loop, which its
  first progress report dates: that report says how long after the start it was written), train
  (to the moment its output file appears: it opens it as soon as the loop ends) and save (the
  rest: writing the vectors, exit). Without a progress report (a tiny corpus) train is counted
  from the child's start. Its whole output goes to `log_path`.
  """
  command = pword2vec_command(spec)
  vectors, run_dir = spec["vectors_path"], spec["run_dir"]
  if os.path.exists(vectors):
    os.remove(vectors)
  print(f"[{spec['name']}] {shlex.join(command)}", file=sys.stderr, flush=True)
  chunks: list[tuple[float, bytes]] = []  # (arrival time, bytes) of the child's stdout
  started = time.perf_counter()
  process = subprocess.Popen(command, cwd=run_dir, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

  def read() -> None:
    last_echo = started
    while data := os.read(process.stdout.fileno(), 1 << 16):
      now = time.perf_counter()
      chunks.append((now, data))
      reports = _PW2V_PROGRESS.findall(data)
      if reports and now - last_echo >= _PW2V_ECHO_SECONDS:
        last_echo = now
        print(f"[{spec['name']}] {_pw2v_report_text(reports[-1])}", file=sys.stderr, flush=True)

  reader = threading.Thread(target=read, daemon=True)
  reader.start()
  created, polled_peak, polls = None, None, 0
  while process.poll() is None:
    if created is None and os.path.exists(vectors):
      created = time.perf_counter()
    if polls % 20 == 0:  # ~10 times a second
      hwm = _vmhwm_mb(process.pid)
      if hwm is not None:
        polled_peak = max(polled_peak or 0.0, hwm)
    polls += 1
    time.sleep(_PW2V_POLL_SECONDS)
  ended = time.perf_counter()
  reader.join()
  process.stdout.close()
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # its only child
  output = b"".join(data for _, data in chunks)
  with open(spec["log_path"], "wb") as f:
    f.write(output)
  lines = [line.strip() for line in re.split(rb"[\r\n]", output) if line.strip()]
  last_line = lines[-1].decode("utf-8", "replace") if lines else "(no output)"
  if process.returncode != 0:
    raise UserError(f"pWord2Vec exited with code {process.returncode}: {last_line} (its output: "
                    f"{spec['log_path']})")
  if not os.path.exists(vectors):
    raise UserError(f"pWord2Vec wrote no {vectors}: {last_line} (its output: {spec['log_path']})")
  if created is None:  # done within one poll
    created = ended

  vocab = _PW2V_VOCAB.search(output)
  train_words = _PW2V_TRAIN_WORDS.search(output)
  train_words = int(train_words.group(1)) if train_words else None
  ends = np.cumsum([len(data) for _, data in chunks])
  reports, last_report = [], "none"  # (arrival time, progress %, words/s) per report
  for match in _PW2V_PROGRESS.finditer(output):
    arrived = chunks[int(np.searchsorted(ends, match.end()))][0]
    reports.append((arrived, float(match.group(2)), 1e3 * float(match.group(3))))
    last_report = _pw2v_report_text(match.groups())
  train_start = None
  if reports and train_words:
    arrived, progress, rate = reports[0]
    # Its rate is words so far / seconds since its training started, and its progress is words
    # so far / (iter x train words + 1): their ratio is how long after the start it was written.
    since_start = progress / 100 * (spec["epochs"] * train_words + 1) / rate if rate > 0 else 0.0
    if started <= arrived - since_start <= created:
      train_start = arrived - since_start

  # ru_maxrss of a child also holds the peak of the address space it was forked from (this
  # wrapper's), carried across exec: it is the child's own peak when above the wrapper's.
  scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
  child_maxrss, wrapper_peak = usage.ru_maxrss / scale, common.peak_rss_mb()
  peak = child_maxrss if child_maxrss > wrapper_peak or polled_peak is None else polled_peak
  result = {
      "setup_seconds": float("nan") if train_start is None else train_start - started,
      "train_seconds": created - (started if train_start is None else train_start),
      "train_seconds_includes_setup": train_start is None,
      "save_seconds": ended - created, "binary_seconds": ended - started,
      "vocab_size": int(vocab.group(1)) - 1 if vocab else None,  # without </s>
      "train_words_reported": train_words, "progress_reports": len(reports),
      "command": command, "peak_rss_mb": peak, "child_ru_maxrss_mb": child_maxrss,
      "child_vmhwm_polled_mb": polled_peak, "wrapper_peak_rss_mb": wrapper_peak,
      "version": f"pWord2Vec {spec['binary']}"}
  if reports:
    result["reported_words_per_sec"] = reports[-1][2]  # its own clock and count, last report
    result["last_progress_percent"] = reports[-1][1]
  print(f"[{spec['name']}] vocabulary {result['vocab_size']} words (+ {PWORD2VEC_EOS}), "
        f"{train_words} words in its train file; last report: "
        f"{last_report}; "
        f"setup {result['setup_seconds']:.2f}s, train {result['train_seconds']:.2f}s, save "
        f"{result['save_seconds']:.2f}s", file=sys.stderr, flush=True)
  return result


def _pw2v_report_text(report: tuple[bytes, bytes, bytes]) -> str:
  alpha, progress, rate = (value.decode("ascii") for value in report)
  return f"alpha {alpha}, progress {progress}%, {rate}k words/s (its count)"


_WORKERS = {"gensim": gensim_worker, "ours": ours_worker, "pword2vec": pword2vec_worker}


def run_worker(kind: str, spec_path: str) -> None:
  """Runs one trainer as described by the JSON spec the parent wrote; writes its result."""
  spec = common.read_worker_spec(spec_path)
  if spec.get("cpus"):  # before TensorFlow or gensim size their thread pools
    os.sched_setaffinity(0, spec["cpus"])
  common.quiet_library_logs()
  result = _WORKERS[kind](spec)
  if spec.get("cpus"):
    result["cpus"] = sorted(os.sched_getaffinity(0))  # what the run was held to
  common.write_worker_result(spec, result)


# --- The parent: corpus, runs, evaluation, report --------------------------------------------


def write_stream(corpus, review_mask: np.ndarray, path: str) -> int:
  """Writes the chosen reviews' cleaned tokens for the gensim worker. Returns their count.

  Args:
    corpus: a `w2v_tf.corpus.Corpus`.
    review_mask: [R] bool, the reviews to keep (the trainer's training reviews).
    path: the .npz to write.
  """
  lengths = np.diff(corpus.review_offsets)  # [R]
  review_of_token = np.repeat(np.arange(corpus.num_reviews), lengths)  # [T]
  token_ids = corpus.token_ids[review_mask[review_of_token]]
  offsets = np.concatenate([[0], np.cumsum(lengths[review_mask])]).astype(np.int64)
  with open(path, "wb") as f:
    np.savez(f, types="\n".join(corpus.types).encode("utf-8"), token_ids=token_ids,
             offsets=offsets)
  return int(len(token_ids))


def write_token_file(stream_path: str, path: str) -> dict:
  """Writes the stream's reviews as text for pWord2Vec: one a line, tokens separated by spaces.

  Empty reviews are left out (pWord2Vec would read each empty line as one more `</s>` token).
  Returns the counts: tokens, lines, and tokens pWord2Vec cannot read as they are (longer
  than the 98 bytes it keeps, or holding a tab or carriage return, which it splits on / skips).
  """
  with np.load(stream_path) as data:
    types = bytes(data["types"]).decode("utf-8").split("\n")
    token_ids = data["token_ids"]
  unreadable_types = np.array([len(t.encode("utf-8")) > PWORD2VEC_MAX_WORD or "\t" in t
                               or "\r" in t for t in types], dtype=bool)
  lines = 0
  with open(path, "w", encoding="utf-8", newline="\n") as f:
    for review in load_stream(stream_path):
      if review:
        f.write(" ".join(review) + "\n")
        lines += 1
  return {"path": path, "tokens": int(len(token_ids)), "lines": lines,
          "unreadable_tokens": int(unreadable_types[token_ids].sum()) if len(types) else 0}


def _workers(row: dict) -> int:
  return 1 if row.get("cpus") else FLAGS.workers


def _gensim_spec(stream_path: str, run_dir: str, row: dict) -> dict:
  return {"stream_path": stream_path, "vectors_path": os.path.join(run_dir, "vectors.bin"),
          "embedding_dim": FLAGS.embedding_dim, "window": FLAGS.window,
          "min_count": FLAGS.min_count, "subsample": FLAGS.subsample, "negative": FLAGS.negative,
          "workers": _workers(row), "alpha": row.get("alpha", FLAGS.gensim_alpha),
          "seed": FLAGS.seed, "epochs": row["epochs"], "hs": row.get("hs", FLAGS.gensim_hs),
          "sg": row.get("sg", 1), "cpus": row.get("cpus")}


def _pword2vec_spec(train_path: str, run_dir: str, row: dict) -> dict:
  """gensim's settings (`_gensim_spec`) as pWord2Vec's options; --workers is its -threads."""
  spec = pword2vec_spec(FLAGS.pword2vec, train_path, run_dir, embedding_dim=FLAGS.embedding_dim,
                        window=FLAGS.window, negative=FLAGS.negative, subsample=FLAGS.subsample,
                        min_count=FLAGS.min_count, epochs=row["epochs"], threads=_workers(row),
                        alpha=FLAGS.gensim_alpha, batch_size=FLAGS.pword2vec_batch_size)
  return dict(spec, cpus=row.get("cpus"))


def our_experiment(loss: str, model_dir: str, **changes) -> config.ExperimentConfig:
  """The trainer's config for one row: the flags' settings, skip-gram, `loss`, no analogies."""
  return config_flags.from_flags(FLAGS, names=OUR_FIELDS).replace(
      **{"model": "skipgram", "loss": loss, "model_dir": model_dir, "analogies": None,
         "progress": False, "overwrite": True, **changes})


def _ours_spec(row: dict, model_dir: str) -> dict:
  experiment = our_experiment(row["loss"], model_dir, epochs=row["epochs"], **row["changes"])
  return {"experiment": experiment.to_dict(), "cpus": row.get("cpus")}


def measure(name: str, kind: str, spec: dict, run_dir: str, vectors_path: str,
            train_tokens: int, epochs: int, analogies, word_pairs, restrict_vocab: int) -> dict:
  """One run of any system: trains in its own process, then words/s and the scores.

  words/s = the training reviews' corpus tokens x epochs / the run's train seconds, for every
  system; pWord2Vec's `</s>` row is left out of the scoring.
  """
  result = common.run_worker_process(name, ["-m", "benchmarks.compare", f"--worker={kind}"],
                                     spec, run_dir)
  result["words_per_sec"] = train_tokens * epochs / result["train_seconds"]
  drop_words = (PWORD2VEC_EOS,) if kind == "pword2vec" else ()
  result["eval"] = common.evaluate_vectors(vectors_path, analogies, word_pairs, restrict_vocab,
                                           drop_words)
  return result


def summarize(name: str, runs: list[dict]) -> dict:
  """Medians over the repeats of one system."""
  row = {"system": name, "repeats": len(runs)}
  for key in ("setup_seconds", "train_seconds", "process_seconds", "words_per_sec",
              "peak_rss_mb"):
    row[key] = common.median([r.get(key) for r in runs])
  for part in ("total", "semantic", "syntactic"):
    row[f"analogy_{part}"] = common.median(
        [r["eval"]["analogy"][part]["accuracy"] for r in runs if "analogy" in r["eval"]])
  row["analogy_coverage"] = common.median(
      [r["eval"]["analogy"]["total"]["coverage"] for r in runs if "analogy" in r["eval"]])
  row["analogy_seen"] = common.median(
      [r["eval"]["analogy"]["total"]["seen"] for r in runs if "analogy" in r["eval"]])
  row["wordsim_spearman"] = common.median(
      [r["eval"]["wordsim"]["spearman"] for r in runs if "wordsim" in r["eval"]])
  row["vocab_size"] = runs[0]["vocab_size"]
  return row


def add_ratios(rows: list[dict]) -> None:
  """Each row's words/s over its gensim's and (when it ran) pWord2Vec's: `ratio_to_*`.

  A row's references are its `peers` ({"gensim": row name, "pword2vec": row name}: the same
  loss, cores and epochs); rows without peers are measured against the rows named gensim and
  pWord2Vec.
  """
  by_name = {row["system"]: row for row in rows}
  for row in rows:
    peers = row.get("peers", {"gensim": GENSIM, "pword2vec": PWORD2VEC})
    for kind, key in (("gensim", "ratio_to_gensim"), ("pword2vec", "ratio_to_pword2vec")):
      reference = by_name.get(peers.get(kind))
      if reference is not None:
        row[key] = row["words_per_sec"] / reference["words_per_sec"]


_COLUMNS = ("system", "setup s", "train s", "process s", "corpus words/s", "× gensim",
            "× pWord2Vec", "peak RSS MiB", "analogy total", "semantic", "syntactic", "coverage",
            "WS353 ρ")


def format_table(rows: list[dict], skipped: dict[str, str] | None = None) -> str:
  """The markdown table of the summarized rows (gensim first), then one line per skipped system."""
  lines = ["| " + " | ".join(_COLUMNS) + " |",
           "| --- |" + " ---: |" * (len(_COLUMNS) - 1)]
  for row in rows:
    lines.append(
        f"| {row['system']} | {format_value(row['setup_seconds'], '{:.1f}')} | "
        f"{format_value(row['train_seconds'], '{:.1f}')} | "
        f"{format_value(row.get('process_seconds'), '{:.1f}')} | "
        f"{format_value(row['words_per_sec'] / 1e3, '{:,.0f}k')} | "
        f"{format_value(row.get('ratio_to_gensim'), '{:.2f}×')} | "
        f"{format_value(row.get('ratio_to_pword2vec'), '{:.2f}×')} | "
        f"{format_value(row['peak_rss_mb'], '{:,.0f}')} | "
        f"{format_value(100 * row['analogy_total'], '{:.1f}%')} | "
        f"{format_value(100 * row['analogy_semantic'], '{:.1f}%')} | "
        f"{format_value(100 * row['analogy_syntactic'], '{:.1f}%')} | "
        f"{format_value(100 * row['analogy_coverage'], '{:.1f}%')} | "
        f"{format_value(row['wordsim_spearman'], '{:.3f}')} |")
  for system, reason in (skipped or {}).items():
    lines.append(f"| {system} | skipped: {reason} |" + " |" * (len(_COLUMNS) - 2))
  return "\n".join(lines)


# The headline targets of each row of ours: words/s at least these multiples of the reference's.
SPEED_TARGETS = {GENSIM: 1.5, PWORD2VEC: 1.2}
WORDSIM_TOLERANCE = 0.02  # our WS353 rho >= the reference's minus this
PEAK_RSS_TARGET_MB = 1024


def check_targets(rows: list[dict]) -> dict:
  """The targets of each of our rows against its peers (those that ran).

  The headline rows (no `goals`): words/s >= 1.5x gensim's / 1.2x pWord2Vec's, analogy total
  >= each's, WS353 Spearman >= each's - 0.02, peak RSS <= 1 GiB. A suite row's `goals` give
  its own factors ({"gensim": 1.0}) and analogy margins in points ({"gensim": -0.5}).
  """
  by_name = {row["system"]: row for row in rows}
  targets = {}
  for row in rows:
    if _kind_of(row["system"]) != "ours":
      continue
    goals = row.get("goals", {"speed": {"gensim": SPEED_TARGETS[GENSIM],
                                        "pword2vec": SPEED_TARGETS[PWORD2VEC]},
                              "analogy_margin": {}, "wordsim": True, "rss": True})
    peers = row.get("peers", {"gensim": GENSIM, "pword2vec": PWORD2VEC})
    checks = {}
    for kind, factor in goals["speed"].items():
      other = by_name.get(peers.get(kind))
      if other is None:
        continue
      checks[f"words_per_sec_ge_{factor:g}x_{kind}".replace(".", "_")] = bool(
          row["words_per_sec"] >= factor * other["words_per_sec"])
      margin = goals["analogy_margin"].get(kind, 0.0)
      name = f"analogy_total_ge_{kind}" + (f"_{margin:+g}_points".replace(".", "_")
                                           .replace("+", "plus_").replace("-", "minus_")
                                           if margin else "")
      checks[name] = bool(row["analogy_total"] >= other["analogy_total"] + margin / 100)
      if goals["wordsim"]:
        checks[f"wordsim_ge_{kind}_minus_0_02"] = bool(
            row["wordsim_spearman"] >= other["wordsim_spearman"] - WORDSIM_TOLERANCE)
    if goals["rss"]:
      checks["peak_rss_le_1GiB"] = bool(row["peak_rss_mb"] <= PEAK_RSS_TARGET_MB)
    targets[row["system"]] = checks
  return targets


def _kind_of(system: str) -> str:
  return "gensim" if system.startswith(GENSIM) else (
      "pword2vec" if system.startswith(PWORD2VEC) else "ours")


def core_speedups(rows: list[dict]) -> dict:
  """{system: words/s on all cores / words/s on one} for each system with both rows."""
  by_name = {row["system"]: row for row in rows}
  return {name.removesuffix(ONE_CORE): by_name[name.removesuffix(ONE_CORE)]["words_per_sec"]
          / row["words_per_sec"]
          for name, row in by_name.items()
          if name.endswith(ONE_CORE) and name.removesuffix(ONE_CORE) in by_name}


def plot(rows: list[dict], path: str, title: str) -> None:
  """Bar charts of words/s, analogy accuracy (total / semantic / syntactic) and WS353 rho."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  names = [row["system"] for row in rows]
  x = np.arange(len(rows))
  figure, axes = plt.subplots(1, 3, figsize=(5 + 3.2 * len(rows), 4.2))
  speeds = [row["words_per_sec"] / 1e3 for row in rows]
  reference_colors = {GENSIM: "tab:gray", PWORD2VEC: "tab:orange"}
  axes[0].bar(x, speeds, color=[reference_colors.get(name, "tab:blue") for name in names])
  for i, row in enumerate(rows):
    if row["system"] != GENSIM:
      axes[0].annotate(f"{row['ratio_to_gensim']:.2f}×", (i, speeds[i]), ha="center",
                       va="bottom")
  axes[0].set_title("training throughput")
  axes[0].set_ylabel("corpus words/s (thousands; labels: × gensim)")
  width = 0.27
  for offset, part in zip((-width, 0, width), ("total", "semantic", "syntactic")):
    axes[1].bar(x + offset, [100 * np.nan_to_num(row[f"analogy_{part}"]) for row in rows],
                width, label=part)
  axes[1].set_title("analogy accuracy (3CosAdd)")
  axes[1].set_ylabel("% of covered questions")
  top = max([100 * np.nan_to_num(row[f"analogy_{part}"]) for row in rows
             for part in ("total", "semantic", "syntactic")] + [1e-3])
  axes[1].set_ylim(0, 1.3 * top)  # room for the legend above the bars
  axes[1].legend(fontsize="small", ncol=3, loc="upper center")
  axes[2].bar(x, [np.nan_to_num(row["wordsim_spearman"]) for row in rows],
              color=[reference_colors.get(name, "tab:green") for name in names])
  axes[2].set_title("WordSim353 Spearman ρ")
  for axis in axes:
    axis.set_xticks(x, names, rotation=15, fontsize="small")
  figure.suptitle(title, fontsize="small")
  figure.tight_layout()
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  figure.savefig(path, dpi=110)
  plt.close(figure)


def _system_name(loss: str) -> str:
  return f"w2v-tf ({loss})"


ONE_CORE = " · 1 core"


def plan_rows(our_losses: Sequence[str], epochs: int, suite_epochs: int | None,
              with_pword2vec: bool) -> list[dict]:
  """The runs, in order: {name, kind, epochs, loss, changes, cpus, hs, sg, peers, goals}.

  The headline: gensim, pWord2Vec and each of `our_losses` at `epochs` on all cores. With
  `suite_epochs`, also (at that many epochs) each loss against gensim's same loss and each
  system on one core, with the targets of each such row in its `goals`.
  """
  def system(name, kind, run_epochs, **options):
    return {"name": name, "kind": kind, "epochs": run_epochs, **options}

  def ours(name, loss, run_epochs, peers, goals, changes=None, cpus=None):
    return system(name, "ours", run_epochs, loss=loss, changes=changes or {}, cpus=cpus,
                  peers=peers, goals=goals)

  rows = [system(GENSIM, "gensim", epochs)]
  rows += [system(PWORD2VEC, "pword2vec", epochs)] if with_pword2vec else []
  rows += [system(_system_name(loss), "ours", epochs, loss=loss, changes={})
           for loss in our_losses]
  if suite_epochs is None:
    return rows
  tag = "" if suite_epochs == epochs else f" · {suite_epochs} epochs"
  pw2v = lambda suffix: {"pword2vec": PWORD2VEC + suffix} if with_pword2vec else {}
  same_loss = lambda margin: {"speed": {"gensim": 1.0}, "analogy_margin": {"gensim": margin},
                              "wordsim": False, "rss": False}
  default = config.ModelConfig().loss
  suite = [system(GENSIM + tag, "gensim", suite_epochs)]
  suite += [system(PWORD2VEC + tag, "pword2vec", suite_epochs)] if with_pword2vec else []
  suite += [
      ours(_system_name(default) + tag, default, suite_epochs, {"gensim": GENSIM + tag, **pw2v(tag)},
           {"speed": {"gensim": SPEED_TARGETS[GENSIM], "pword2vec": SPEED_TARGETS[PWORD2VEC]},
            "analogy_margin": {}, "wordsim": True, "rss": True}),
      ours(_system_name("negative_sampling") + tag, "negative_sampling", suite_epochs,
           {"gensim": GENSIM + tag}, same_loss(-0.5), {"num_sampled": FLAGS.negative}),
      system(f"{GENSIM} hs=1{tag}", "gensim", suite_epochs, hs=True),
      ours(_system_name("hierarchical_softmax") + tag, "hierarchical_softmax", suite_epochs,
           {"gensim": f"{GENSIM} hs=1{tag}"}, same_loss(-1.5)),
      system(f"{GENSIM} CBOW{tag}", "gensim", suite_epochs, sg=0),
      ours(f"w2v-tf CBOW ({default}){tag}", default, suite_epochs,
           {"gensim": f"{GENSIM} CBOW{tag}"}, same_loss(0.0), {"model": "cbow"}),
  ]
  one = tag + ONE_CORE
  suite += [system(GENSIM + one, "gensim", suite_epochs, cpus=[0])]
  suite += [system(PWORD2VEC + one, "pword2vec", suite_epochs, cpus=[0])] if with_pword2vec else []
  suite += [ours(_system_name(default) + one, default, suite_epochs,
                 {"gensim": GENSIM + one, **pw2v(one)},
                 {"speed": {"pword2vec": 1.0}, "analogy_margin": {}, "wordsim": False,
                  "rss": False}, cpus=[0])]
  names = {row["name"] for row in rows}
  return rows + [row for row in suite if row["name"] not in names]


def compare(work_dir: str) -> dict:
  """Cleans the corpus, runs every system, evaluates; returns the JSON payload."""
  # pylint: disable=import-outside-toplevel
  from eval.analogy import QUESTIONS_URL, read_analogies
  from eval.similarity import WORDSIM_URL, read_word_pairs
  from w2v_tf import corpus as corpus_lib
  from w2v_tf import pipeline, text

  analogies = read_analogies(cli.find_data_file(
      "questions-words.txt", FLAGS.analogies, "--analogies", QUESTIONS_URL))
  word_pairs = read_word_pairs(cli.find_data_file(
      "wordsim353.tsv", FLAGS.wordsim, "--wordsim", WORDSIM_URL))

  started = time.perf_counter()
  stopwords = text.load_stopwords(FLAGS.stopwords)
  corpus = corpus_lib.load_corpus(FLAGS.train_csv, FLAGS.text_column, FLAGS.max_reviews,
                                  stopwords, FLAGS.cache_dir or None)
  corpus_seconds = time.perf_counter() - started
  heldout = pipeline.split_heldout(corpus.num_reviews, FLAGS.heldout_reviews, FLAGS.seed)
  stream_path = os.path.join(work_dir, _STREAM_FILE)
  train_tokens = write_stream(corpus, ~heldout, stream_path)
  train_reviews = int((~heldout).sum())
  del corpus
  print(f"corpus: {train_reviews:,} training reviews ({int(heldout.sum()):,} held out), "
        f"{train_tokens:,} cleaned tokens; {corpus_seconds:.1f}s to load", file=sys.stderr)

  skipped, token_file = {}, None
  pword2vec_reason = pword2vec_skip_reason(FLAGS.pword2vec)
  if pword2vec_reason:
    skipped[PWORD2VEC] = pword2vec_reason
    print(f"{PWORD2VEC}: skipped: {pword2vec_reason}", file=sys.stderr, flush=True)
  else:
    token_file = write_token_file(stream_path, os.path.join(work_dir, _TOKEN_FILE))
    assert token_file["tokens"] == train_tokens, token_file
    if token_file["unreadable_tokens"]:
      print(f"{PWORD2VEC}: {token_file['unreadable_tokens']:,} tokens are longer than "
            f"{PWORD2VEC_MAX_WORD} bytes or hold a tab / carriage return: it reads them otherwise",
            file=sys.stderr)

  systems = plan_rows(FLAGS.losses, FLAGS.epochs, FLAGS.suite_epochs if FLAGS.suite else None,
                      with_pword2vec=not pword2vec_reason)
  runs = {row["name"]: [] for row in systems}
  for repeat in range(FLAGS.repeats):
    for index, row in enumerate(systems):
      name, kind = row["name"], row["kind"]
      run_dir = os.path.join(work_dir, f"{index:02d}-{kind}-{row.get('loss') or kind}-r{repeat}")
      if kind == "gensim":
        spec = _gensim_spec(stream_path, run_dir, row)
        vectors_path = spec["vectors_path"]
      elif kind == "pword2vec":
        spec = _pword2vec_spec(token_file["path"], run_dir, row)
        vectors_path = spec["vectors_path"]
      else:
        spec = _ours_spec(row, run_dir)
        vectors_path = os.path.join(run_dir, "vectors.bin")
      result = measure(name, kind, spec, run_dir, vectors_path, train_tokens, row["epochs"],
                       analogies, word_pairs, FLAGS.restrict_vocab)
      result["repeat"] = repeat
      runs[name].append(result)
      total = result["eval"].get("analogy", {}).get("total", {})
      print(f"--- {name}: {result['train_seconds']:.1f}s train, "
            f"{result['words_per_sec'] / 1e3:,.0f}k words/s, {result['peak_rss_mb']:,.0f} MiB, "
            f"analogy {100 * total.get('accuracy', float('nan')):.1f}%", file=sys.stderr,
            flush=True)

  rows = [dict(summarize(row["name"], runs[row["name"]]), epochs=row["epochs"],
               cores=1 if row.get("cpus") else FLAGS.workers,
               **({"peers": row["peers"], "goals": row["goals"]} if "peers" in row else {}))
          for row in systems]
  add_ratios(rows)
  versions = {row["name"]: runs[row["name"]][0].get("version") for row in systems}
  return {
      "settings": {
          "train_csv": FLAGS.train_csv, "max_reviews": FLAGS.max_reviews,
          "stopwords": FLAGS.stopwords, "heldout_reviews": FLAGS.heldout_reviews,
          "epochs": FLAGS.epochs, "embedding_dim": FLAGS.embedding_dim, "window": FLAGS.window,
          "min_count": FLAGS.min_count, "subsample": FLAGS.subsample, "seed": FLAGS.seed,
          "negative": FLAGS.negative, "workers": FLAGS.workers,
          "gensim_alpha": FLAGS.gensim_alpha, "losses": list(FLAGS.losses),
          "batch_size": FLAGS.batch_size, "num_sampled": FLAGS.num_sampled,
          "learning_rate": FLAGS.learning_rate,
          "sample_group_centers": FLAGS.sample_group_centers, "optimizer": FLAGS.optimizer,
          "jit_compile": FLAGS.jit_compile, "negatives_per": FLAGS.negatives_per,
          "restrict_vocab": FLAGS.restrict_vocab,
          "analogies": analogies.path, "wordsim": word_pairs.path, "repeats": FLAGS.repeats,
          "pword2vec": FLAGS.pword2vec, "suite": FLAGS.suite,
          "suite_epochs": FLAGS.suite_epochs if FLAGS.suite else None,
          "pword2vec_batch_size": FLAGS.pword2vec_batch_size or 2 * FLAGS.window + 1},
      "machine": {**common.machine(), "cpu_count": os.cpu_count(), "versions": versions},
      "corpus": {"train_reviews": train_reviews, "heldout_reviews": int(heldout.sum()),
                 "train_tokens": train_tokens, "load_seconds": corpus_seconds,
                 "token_file": token_file},
      "command": common.command_line("benchmarks.compare"),
      "rows": rows,
      "skipped": skipped,
      "ratio": {row["system"]: row["ratio_to_gensim"] for row in rows if row["system"] != GENSIM},
      "ratio_to_pword2vec": {row["system"]: row["ratio_to_pword2vec"] for row in rows
                             if "ratio_to_pword2vec" in row and row["system"] != PWORD2VEC},
      "targets": check_targets(rows),
      "speedup_all_cores_over_one": core_speedups(rows),
      "runs": runs,
      "table": format_table(rows, skipped),
  }


def _validate() -> None:
  problems = []
  for name in ("negative", "workers", "repeats", "suite_epochs"):
    if getattr(FLAGS, name) <= 0:
      problems.append(f"--{name} must be positive (got {getattr(FLAGS, name)})")
  unknown = [loss for loss in FLAGS.losses if loss not in OUR_LOSSES]
  if unknown or not FLAGS.losses:
    problems.append(f"--losses must name some of {', '.join(OUR_LOSSES)} (got "
                    f"{','.join(FLAGS.losses)!r})")
  if FLAGS.pword2vec_batch_size is not None and FLAGS.pword2vec_batch_size <= 0:
    problems.append(f"--pword2vec_batch_size must be positive (got {FLAGS.pword2vec_batch_size})")
  if problems:
    raise UsageError("; ".join(problems))
  for loss in FLAGS.losses:  # the trainer's own checks of its settings
    our_experiment(loss, "unused").resolved().validate()


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise UsageError(f"unexpected arguments: {' '.join(argv[1:])} (flags start with --)")
  if FLAGS.worker:
    run_worker(FLAGS.worker, FLAGS.worker_spec)
    return
  _validate()
  with common.work_folder(FLAGS.work_dir, "w2v-compare-") as work_dir:
    payload = compare(work_dir)
  common.write_json(FLAGS.output_json, payload, echo=False)
  if FLAGS.plot:
    settings = payload["settings"]
    plot(payload["rows"], FLAGS.plot,
         f"{os.path.basename(settings['train_csv'])}: {payload['corpus']['train_tokens']:,} "
         f"tokens x {settings['epochs']} epochs, dim {settings['embedding_dim']}, window "
         f"{settings['window']}, {payload['machine']['cores']} cores")
  print(payload["table"])
  for system, checks in payload["targets"].items():
    print(f"{system}: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in checks.items()))
  for system, speedup in payload["speedup_all_cores_over_one"].items():
    print(f"{system}: all cores / one core = {speedup:.2f}x")


if __name__ == "__main__":
  define_flags()
  run_main(main)
