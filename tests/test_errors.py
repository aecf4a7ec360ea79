"""Bad input to the training binaries: one `error:` line, a non-zero exit, nothing half-written.

Table-driven: each case runs `python -m w2v_tf.train | w2v_tf.data | w2v_tf.export` (and, for
flag parsing, an eval binary) in a subprocess, as a user would, and checks the exit status (2 for
usage errors, 1 otherwise), that stderr holds exactly one line, `error: ...` naming the problem,
no traceback, and that no file appeared or changed under the output paths. A few cases succeed
with a `warning:` line instead (non-UTF-8 bytes replaced, a damaged newest checkpoint skipped).
The eval binaries' file errors (vectors rows disagreeing with the header, malformed analogy and
word-pair lines, ...) are covered the same way in tests/test_eval_errors.py.

TensorFlow takes seconds to start, so the commands run through `tests/binaries.Runner` (forked
from a process that imported TensorFlow once; W2V_TEST_FORK=0 runs plain subprocesses), two at a
time, once per module for the selected cases.
"""

import bz2
import concurrent.futures
import dataclasses
import gzip
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.binaries import module_runner

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
# TensorFlow as the user gets it (its log level unset, oneDNN on): every stderr line counts.
ENV = {**{key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"},
       "TF_ENABLE_ONEDNN_OPTS": "1",
       "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}

WORDS = [f"w{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(40)]  # waa, wba, ... 40 words


def _reviews(count, seed=0, length=30):
  import random  # pylint: disable=import-outside-toplevel
  rng = random.Random(seed)
  return [" ".join(rng.choice(WORDS) for _ in range(length)) for _ in range(count)]


def _csv(reviews):
  return "review,sentiment\n" + "".join(f'"{r}",positive\n' for r in reviews)


# Flags that make training fast on the small corpus; a case's own flags come after (last wins).
_FAST = ["--stopwords=none", "--cache_dir={cache}", "--epochs=1", "--batch_size=64",
         "--sample_group_centers=64", "--embedding_dim=8", "--min_count=1", "--num_sampled=8",
         "--nojit_compile", "--noprogress", "--heldout_documents=2"]
_TRAIN = ["--train_csv={good_csv}", *_FAST]


@dataclasses.dataclass
class Case:
  """One row of the table.

  Attributes:
    name: test id.
    module: binary, e.g. "w2v_tf.train".
    args: command line; `{name}` fields are filled from the `files` fixture, `{out}` is a fresh
      directory for this case (model_dir / outputs go there).
    code: expected exit status.
    message: a regex searched in the one `error:` (or `warning:`) line.
    watch: extra directories (fixture names) that must not change.
  """
  name: str
  module: str
  args: list
  code: int
  message: str
  watch: tuple = ()
  skip_if_root: bool = False


CASES = [
    # --- the CSV ---------------------------------------------------------------------------
    Case("missing-csv", "w2v_tf.train", [*_TRAIN, "--train_csv={tmp}/nope.csv",
                                         "--model_dir={out}/m"], 1,
         r"nope\.csv: no such file: pass --train_csv"),
    Case("csv-is-a-directory", "w2v_tf.train", [*_TRAIN, "--train_csv={tmp}",
                                                "--model_dir={out}/m"], 1,
         r"cannot read it \(.*Is a directory"),
    Case("unreadable-csv", "w2v_tf.train", [*_TRAIN, "--train_csv={unreadable_csv}",
                                            "--model_dir={out}/m"], 1,
         r"cannot read it \(.*Permission denied", skip_if_root=True),
    Case("broken-gzip", "w2v_tf.train", [*_TRAIN, "--train_csv={broken_csv_gz}",
                                         "--model_dir={out}/m"], 1, r"cannot read it"),
    Case("empty-csv", "w2v_tf.train", [*_TRAIN, "--train_csv={empty_csv}", "--model_dir={out}/m"],
         1, r"empty\.csv: file is empty; expected a CSV with a header row"),
    Case("no-text-column", "w2v_tf.train", [*_TRAIN, "--train_csv={nocol_csv}",
                                            "--model_dir={out}/m"], 1,
         r"no column 'review' in the header \['text', 'label'\]; pass --text_column"),
    Case("duplicate-text-column", "w2v_tf.train", [*_TRAIN, "--train_csv={dupcol_csv}",
                                                   "--model_dir={out}/m"], 1,
         r"the header names 'review' 2 times \(columns 1, 3\): rename the duplicates"),
    Case("fifo-csv", "w2v_tf.data", ["--train_csv={fifo_csv}", "--vocab_out={out}/v.tsv"], 1,
         r"fifo\.csv: is a pipe or a device, not a file"),
    Case("unbalanced-quote", "w2v_tf.train", [*_TRAIN, "--train_csv={quote_csv}",
                                              "--model_dir={out}/m"], 1,
         r"quote\.csv: malformed CSV record starting on line 5 \(.*quote.*\): quote a field"),
    Case("unclosed-quote", "w2v_tf.data", ["--train_csv={unclosed_csv}", "--stopwords=none",
                                           "--cache_dir=", "--vocab_out={out}/v.tsv"], 1,
         r"malformed CSV record starting on line 4 \(Reached end of file without closing"),
    Case("stray-quote-data", "w2v_tf.data", ["--train_csv={quote_csv}", "--stopwords=none",
                                             "--cache_dir={cache}", "--dump_tokens={out}/t.txt",
                                             "--vocab_out={out}/v.tsv"], 1,
         r"malformed CSV record starting on line 5"),
    Case("non-utf8-strict", "w2v_tf.train", [*_TRAIN, "--train_csv={latin1_csv}", "--strict_utf8",
                                             "--model_dir={out}/m"], 1,
         r"latin1\.csv: 2 review\(s\) hold bytes that are not UTF-8, the first at row 3, line 4: "
         r"convert the file to UTF-8"),
    Case("non-utf8-strict-data", "w2v_tf.data", ["--train_csv={latin1_csv}", "--stopwords=none",
                                                 "--cache_dir={cache}", "--strict_utf8",
                                                 "--vocab_out={out}/v.tsv"], 1,
         r"the first at row 3, line 4"),
    Case("non-utf8-replaced", "w2v_tf.data", ["--train_csv={latin1_csv}", "--stopwords=none",
                                              "--cache_dir={cache}", "--vocab_out={out}/v.tsv"],
         0, r"^warning: .*latin1\.csv: 2 review\(s\) hold bytes that are not UTF-8 \(first at "
            r"row 3, line 4\); they were replaced by U\+FFFD"),
    Case("no-tokens", "w2v_tf.train", [*_TRAIN, "--train_csv={notokens_csv}",
                                       "--model_dir={out}/m"], 1,
         r"no tokens left after cleaning \(3 rows read\)"),
    Case("vocab-below-2", "w2v_tf.train", [*_TRAIN, "--train_csv={oneword_csv}",
                                           "--model_dir={out}/m"], 1,
         r"vocabulary has 1 word\(s\) after --min_count=1: lower --min_count"),
    Case("vocab-below-2-min-count", "w2v_tf.train", [*_TRAIN, "--min_count=100000",
                                                     "--model_dir={out}/m"], 1,
         r"vocabulary has 0 word\(s\) after --min_count=100000"),
    # --- plain text (--train_text) ----------------------------------------------------------
    Case("text-glob-matches-nothing", "w2v_tf.train", [*_FAST, "--train_text={tmp}/nope/*.txt",
                                                       "--model_dir={out}/m"], 1,
         r"nope/\*\.txt: no files match the glob: --train_text wants a text file, a folder"),
    Case("text-glob-matches-nothing-data", "w2v_tf.data", ["--train_text={tmp}/nope/*.txt.gz",
                                                           "--vocab_out={out}/v.tsv"], 1,
         r"no files match the glob"),
    Case("text-empty-folder", "w2v_tf.train", [*_FAST, "--train_text={emptydir}",
                                               "--model_dir={out}/m"], 1,
         r"emptydir: the folder holds no file"),
    Case("text-truncated-gz-shard", "w2v_tf.train", [*_FAST, "--train_text={cutshards}",
                                                     "--model_dir={out}/m"], 1,
         r"cutshards/part-1\.txt\.gz: the compressed stream is truncated"),
    Case("text-truncated-bz2", "w2v_tf.data", ["--train_text={cut_txt_bz2}", "--stopwords=none",
                                               "--cache_dir={cache}", "--dump_tokens={out}/t.txt",
                                               "--vocab_out={out}/v.tsv"], 1,
         r"cut\.txt\.bz2: the compressed stream is truncated"),
    Case("text-binary-file", "w2v_tf.train", [*_FAST, "--train_text={binary_txt}",
                                              "--model_dir={out}/m"], 1,
         r"binary\.txt: is not a text file \(a NUL byte near its start\)"),
    Case("text-fifo", "w2v_tf.data", ["--train_text={fifo_txt}", "--vocab_out={out}/v.tsv"], 1,
         r"fifo\.txt: is a pipe or a device, not a file"),
    Case("text-empty-file", "w2v_tf.train", [*_FAST, "--train_text={empty_txt}",
                                             "--model_dir={out}/m"], 1,
         r"empty\.txt: no tokens left after cleaning \(0 lines read\)"),
    Case("text-lowercase-with-imdb-cleaning", "w2v_tf.train",
         [*_FAST, "--train_text={good_txt}", "--cleaning=imdb", "--lowercase",
          "--model_dir={out}/m"], 2,
         r"--lowercase is for --cleaning=none \(the imdb rules lowercase already\)"),
    Case("csv-lowercase-data", "w2v_tf.data", ["--train_csv={good_csv}", "--lowercase",
                                               "--vocab_out={out}/v.tsv"], 2,
         r"--lowercase is for --cleaning=none"),
    # --- flags -------------------------------------------------------------------------------
    Case("num-sampled-vs-vocab", "w2v_tf.train", [*_TRAIN, "--num_sampled=40",
                                                  "--model_dir={out}/m"], 2,
         r"--num_sampled=40 must be smaller than the vocabulary \(40 words\)"),
    Case("window-0", "w2v_tf.train", [*_TRAIN, "--window=0", "--model_dir={out}/m"], 2,
         r"--window must be positive \(got 0\)"),
    Case("embedding-dim-negative", "w2v_tf.train", [*_TRAIN, "--embedding_dim=-3",
                                                    "--model_dir={out}/m"], 2,
         r"--embedding_dim must be positive \(got -3\)"),
    Case("batch-size-0", "w2v_tf.train", [*_TRAIN, "--batch_size=0", "--model_dir={out}/m"], 2,
         r"--batch_size must be positive \(got 0\)"),
    Case("epochs-0", "w2v_tf.train", [*_TRAIN, "--epochs=0", "--model_dir={out}/m"], 2,
         r"--epochs must be positive \(got 0\)"),
    Case("steps-per-call-0", "w2v_tf.train", [*_TRAIN, "--steps_per_call=0",
                                              "--model_dir={out}/m"], 2,
         r"--steps_per_call must be positive \(got 0\)"),
    Case("learning-rate-0", "w2v_tf.train", [*_TRAIN, "--learning_rate=0", "--model_dir={out}/m"],
         2, r"--learning_rate must be > 0 \(got 0"),
    Case("learning-rate-negative", "w2v_tf.train", [*_TRAIN, "--learning_rate=-0.1",
                                                    "--model_dir={out}/m"], 2,
         r"--learning_rate must be > 0 \(got -0\.1\)"),
    # Ranges checked once, in the config, for every binary that takes the flag.
    Case("data-ranges", "w2v_tf.train", [*_TRAIN, "--max_documents=-5", "--seed=-1",
                                         "--heldout_documents=2.5", "--model_dir={out}/m"], 2,
         r"--max_documents must be >= 0 \(got -5\); --seed must be >= 0 \(got -1\); "
         r"--heldout_documents must be a fraction in \[0, 1\) or a whole count \(got 2.5\)"),
    # --max_reviews: the name of earlier versions, an alias.
    # Flags that exclude each other: two inputs (one would be dropped), an old name and its new
    # name disagreeing (one would be dropped); the same value under both names is accepted.
    Case("csv-and-text", "w2v_tf.train", [*_TRAIN, "--train_text={good_txt}",
                                          "--model_dir={out}/m"], 2,
         r"^error: --train_csv and --train_text each name the input: give one$"),
    Case("csv-and-text-data", "w2v_tf.data", ["--train_text={good_txt}", "--train_csv={good_csv}",
                                              "--vocab_out={out}/v.tsv"], 2,
         r"--train_csv and --train_text each name the input"),
    Case("old-and-new-name-disagree", "w2v_tf.train", [*_TRAIN, "--heldout_reviews=4",
                                                       "--model_dir={out}/m"], 2,
         r"--heldout_documents=2.0 and --heldout_reviews=4.0 disagree: --heldout_reviews is the "
         r"old name of --heldout_documents; give one"),
    Case("old-and-new-name-disagree-data", "w2v_tf.data", ["--train_csv={good_csv}",
                                                           "--max_reviews=50",
                                                           "--max_documents=60",
                                                           "--vocab_out={out}/v.tsv"], 2,
         r"--max_documents=60 and --max_reviews=50 disagree"),
    Case("data-ranges-data-binary", "w2v_tf.data", ["--train_csv={good_csv}", "--max_reviews=-5",
                                                    "--vocab_out={out}/v.tsv"], 2,
         r"--max_documents must be >= 0 \(got -5\)"),
    Case("heldout-whole-corpus", "w2v_tf.train", [*_TRAIN, "--heldout_documents=1000",
                                                  "--model_dir={out}/m"], 1,
         r"--heldout_documents=1000 holds out 1,000 documents of a corpus of \d+, leaving none"),
    Case("empty-model-dir", "w2v_tf.train", [*_TRAIN, "--model_dir="], 2,
         r"--model_dir must name a directory \(got an empty one\)"),
    Case("model-dir-under-a-file", "w2v_tf.train", [*_TRAIN, "--model_dir={good_csv}/m"], 1,
         r"cannot write .*good\.csv/m: Not a directory"),
    Case("vocab-out-under-a-file", "w2v_tf.data", ["--train_csv={good_csv}",
                                                   "--stopwords=none", "--cache_dir=",
                                                   "--vocab_out={good_csv}/v.tsv"], 1,
         r"cannot write .*good\.csv/v\.tsv: .*good\.csv is a file, not a directory"),
    Case("unknown-flag", "w2v_tf.train", [*_TRAIN, "--epoch=3", "--model_dir={out}/m"], 2,
         r"Unknown command line flag 'epoch'.*--helpfull"),
    Case("unparsable-flag", "w2v_tf.train", [*_TRAIN, "--epochs=three", "--model_dir={out}/m"], 2,
         r"flag --epochs=three: invalid literal for int"),
    Case("stray-argument", "w2v_tf.train", [*_TRAIN, "--model_dir={out}/m", "extra"], 2,
         r"unexpected arguments: extra"),
    Case("data-unknown-flag", "w2v_tf.data", ["--vocab_out={out}/v.tsv", "--nope"], 2,
         r"Unknown command line flag 'nope'"),
    Case("data-nothing-to-do", "w2v_tf.data", ["--train_csv={good_csv}"], 2,
         r"nothing to do: pass --dump_tokens PATH and/or --vocab_out PATH"),
    Case("data-missing-csv", "w2v_tf.data", ["--train_csv={tmp}/nope.csv",
                                             "--vocab_out={out}/v.tsv"], 1, r"no such file"),
    Case("export-unknown-flag", "w2v_tf.export", ["--model_dir={model}", "--out_dir={out}"], 2,
         r"Unknown command line flag 'out_dir'"),
    Case("eval-unparsable-flag", "eval.similarity", ["--vectors={tmp}/v.txt", "--restrict_vocab=x"],
         2, r"flag --restrict_vocab=x: invalid literal for int"),
    # --- the model dir ---------------------------------------------------------------------
    Case("model-dir-other-config", "w2v_tf.train", [*_TRAIN, "--model_dir={model}",
                                                    "--embedding_dim=16"], 1,
         r"holds a run with another configuration \(model\.embedding_dim: 8 -> 16\): pass "
         r"--overwrite", watch=("model",)),
    Case("model-dir-is-a-file", "w2v_tf.train", [*_TRAIN, "--model_dir={good_csv}"], 1,
         r"--model_dir=.*good\.csv is a file, not a directory"),
    Case("export-no-model-dir-flag", "w2v_tf.export", [], 2, r"pass --model_dir DIR"),
    Case("export-missing-model-dir", "w2v_tf.export", ["--model_dir={tmp}/nope"], 1,
         r"--model_dir=.*nope: no such directory"),
    Case("export-not-a-model-dir", "w2v_tf.export", ["--model_dir={tmp}"], 1,
         r"has no config\.json: not a model dir"),
    Case("export-no-checkpoint", "w2v_tf.export", ["--model_dir={nockpt}", "--output_dir={out}"],
         1, r"no checkpoint in .*nockpt: train first", watch=("nockpt",)),
    Case("export-vocab-mismatch", "w2v_tf.export", ["--model_dir={vocabbad}",
                                                    "--output_dir={out}"], 1,
         r"vocab\.tsv has 39 words but config\.json says vocab_size 40", watch=("vocabbad",)),
    Case("export-all-checkpoints-damaged", "w2v_tf.export", ["--model_dir={damaged}",
                                                             "--output_dir={out}"], 1,
         r"no readable checkpoint in .*damaged \(3 tried, all damaged; newest: .*ckpt-\d+ "
         r"\(IndexError: Read less bytes than requested\)\): train again", watch=("damaged",)),
    # A garbled or empty `checkpoint` state file: our one line only (TensorFlow printed 4
    # warning lines before it; an empty file was a ValueError traceback).
    Case("state-file-garbled", "w2v_tf.train", [*_TRAIN, "--model_dir={garbledstate}",
                                                "--epochs=2"], 0,
         r"^warning: .*garbledstate/checkpoint is unreadable \(.*\); rebuilt it from the "
         r"checkpoint files on disk \(ckpt-\d+, ckpt-\d+, ckpt-\d+\)$"),
    Case("state-file-empty", "w2v_tf.train", [*_TRAIN, "--model_dir={emptystate}", "--epochs=2"],
         0, r"^warning: .*emptystate/checkpoint names no checkpoint; rebuilt it from the "
            r"checkpoint files on disk"),
    # A deleted state file beside the checkpoints: TensorFlow alone started afresh at step 0 and
    # overwrote the run; export said "no checkpoint".
    Case("state-file-deleted", "w2v_tf.train", [*_TRAIN, "--model_dir={deletedstate}",
                                                "--epochs=2"], 0,
         r"^warning: .*deletedstate/checkpoint is missing; rebuilt it from the checkpoint files "
         r"on disk \(ckpt-\d+, ckpt-\d+, ckpt-\d+\)$"),
    Case("export-state-file-deleted", "w2v_tf.export", ["--model_dir={deletedstate_export}",
                                                        "--output_dir={out}"], 0,
         r"^warning: .*deletedstate_export/checkpoint is missing; using the 3 ckpt-N file\(s\) on "
         r"disk instead$"),
    Case("config-deleted", "w2v_tf.train", [*_TRAIN, "--model_dir={noconfig}", "--epochs=2"], 0,
         r"^warning: .*noconfig has checkpoints but no config\.json: resumed from the "
         r"checkpoints alone \(their shapes were checked, not the other flags or the data\)$"),
    Case("export-newest-checkpoint-truncated", "w2v_tf.export", ["--model_dir={truncated}",
                                                                 "--output_dir={out}"], 0,
         r"^warning: fell back to the older checkpoint .*truncated/ckpt-\d+ \(the newer ones are "
         r"damaged\)"),
]


fixture_runner = module_runner(REPO, ENV, workers=2)


@pytest.fixture(name="files", scope="module")
def fixture_files(tmp_path_factory, runner):
  """Input files and model dirs; returns {name: path} for the argument templates."""
  tmp = tmp_path_factory.mktemp("inputs")
  files = {"tmp": str(tmp), "cache": str(tmp / "cache")}

  def write(name, content):
    path = tmp / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    files[name.replace(".", "_")] = str(path)
    return path

  good = _reviews(200)
  write("good.csv", _csv(good))
  write("empty.csv", "")
  write("nocol.csv", "text,label\nsome words here,1\n")
  write("dupcol.csv", "review,sentiment,review\nsome words,positive,other words\n")
  os.mkfifo(tmp / "fifo.csv")  # nobody writes to it: reading it would hang
  files["fifo_csv"] = str(tmp / "fifo.csv")
  write("broken.csv.gz", "review\nnot gzip at all\n")
  # Line 5 starts a record with a stray quote after a closed quoted field.
  write("quote.csv", _csv(good[:3]) + '"a "quoted" word",positive\n' + _csv(good[3:6])[17:])
  write("unclosed.csv", _csv(good[:2]) + '"never closed,positive\nmore,negative\n')
  latin = [r.encode("utf-8") for r in good[:5]]
  latin[2] += b" caf\xe9"  # Latin-1 bytes in rows 3 and 5
  latin[4] += b" na\xefve"
  write("latin1.csv", b"review,sentiment\n" + b"".join(b'"' + r + b'",positive\n' for r in latin))
  write("notokens.csv", "review\n123\n!!\na\n")
  write("oneword.csv", "review\nhello hello hello\nhello\n")
  # Plain text: a folder whose second gzip shard is cut, a cut .bz2, a binary file, a FIFO.
  lines = "".join(line + "\n" for line in _reviews(2000, seed=1)).encode("utf-8")
  write("good.txt", lines[:20_000])
  write("empty.txt", "")
  write("binary.txt", b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\nmore bytes\n")
  os.mkfifo(tmp / "fifo.txt")
  files["fifo_txt"] = str(tmp / "fifo.txt")
  os.mkdir(tmp / "emptydir")
  files["emptydir"] = str(tmp / "emptydir")
  os.mkdir(tmp / "cutshards")
  files["cutshards"] = str(tmp / "cutshards")
  packed = gzip.compress(lines)
  (tmp / "cutshards" / "part-0.txt.gz").write_bytes(packed)
  (tmp / "cutshards" / "part-1.txt.gz").write_bytes(packed[:len(packed) // 2])
  packed = bz2.compress(lines)
  write("cut.txt.bz2", packed[:len(packed) // 2])
  unreadable = write("unreadable.csv", _csv(good[:3]))
  os.chmod(unreadable, 0)
  model = tmp / "model"
  run = runner.run("w2v_tf.train", [*[a.format(**files) for a in _TRAIN],
                                   f"--model_dir={model}", "--checkpoint_every_steps=5"])
  assert run.returncode == 0, run.stderr
  files["model"] = str(model)
  checkpoints = sorted((p for p in os.listdir(model) if p.endswith(".index")),
                       key=lambda p: int(p[5:-6]))
  assert len(checkpoints) == 3, checkpoints

  def copy_model(name, keep_checkpoints=True):
    target = tmp / name
    shutil.copytree(model, target, ignore=None if keep_checkpoints else shutil.ignore_patterns(
        "ckpt-*", "checkpoint"))
    files[name] = str(target)
    return target

  copy_model("nockpt", keep_checkpoints=False)
  vocabbad = copy_model("vocabbad")
  lines = (vocabbad / "vocab.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
  (vocabbad / "vocab.tsv").write_text("".join(lines[:-1]), encoding="utf-8")
  damaged = copy_model("damaged")
  for name in os.listdir(damaged):
    if name.startswith("ckpt-") and ".data-" in name:
      os.truncate(damaged / name, 10)
  (copy_model("garbledstate") / "checkpoint").write_text('model_checkpoint_path: "ckpt-1"\n'
                                                          "garbage {{{\n")
  (copy_model("emptystate") / "checkpoint").write_text("")
  (copy_model("deletedstate") / "checkpoint").unlink()
  (copy_model("noconfig") / "config.json").unlink()
  (copy_model("deletedstate_export") / "checkpoint").unlink()
  truncated = copy_model("truncated")
  newest = truncated / (checkpoints[-1][:-len(".index")] + ".data-00000-of-00001")
  os.truncate(newest, os.path.getsize(newest) // 2)
  return files


def _snapshot(folder):
  """{relative path: (size, mtime_ns)} of every file under `folder`."""
  result = {}
  for root, _, names in os.walk(folder):
    for name in names:
      path = os.path.join(root, name)
      stat = os.stat(path)
      result[os.path.relpath(path, folder)] = (stat.st_size, stat.st_mtime_ns)
  return result


def _run_case(runner, case, files, out):
  argv = [a.format(out=out, **files) for a in case.args]
  watched = {name: _snapshot(files[name]) for name in case.watch}
  run = runner.run(case.module, argv)
  changed = [name for name in case.watch if _snapshot(files[name]) != watched[name]]
  return run, _snapshot(out), changed


@pytest.fixture(name="results", scope="module")
def fixture_results(runner, files, tmp_path_factory, request):
  """Runs every selected case, a few at a time; returns {name: (run, files in out, changed)}."""
  selected = {item.callspec.params["case"].name for item in request.session.items
              if getattr(item, "originalname", None) == "test_bad_input"
              and hasattr(item, "callspec")}
  outs = tmp_path_factory.mktemp("outs")
  with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
    futures = {}
    for case in CASES:
      if case.name in selected and not (case.skip_if_root and _ROOT):
        out = outs / case.name
        out.mkdir()
        futures[case.name] = pool.submit(_run_case, runner, case, files, str(out))
    return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(results, case):
  if case.skip_if_root and _ROOT:
    pytest.skip("root reads any file")
  run, out_files, changed = results[case.name]
  assert "Traceback" not in run.stderr, run.stderr
  assert run.returncode == case.code, run.stderr
  lines = [line for line in run.stderr.splitlines() if line.strip()]
  if case.code:
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: "), run.stderr
    assert re.search(case.message, lines[0]), lines[0]
    assert out_files == {}, f"an error left files behind: {sorted(out_files)}"
    assert not changed, f"an error changed {changed}"
  else:
    warnings = [line for line in lines if line.startswith("warning: ")]
    assert any(re.search(case.message, line) for line in warnings), run.stderr
    assert not any(line.startswith("error: ") for line in lines), run.stderr
    # Nothing of TensorFlow's or absl's own logging ("WARNING:tensorflow:...", "W1207 ...").
    assert not [line for line in lines if re.match(r"(WARNING|ERROR|INFO):|[WEIF]\d{4} ",
                                                   line)], run.stderr


_MAIN = ("import sys\n"
         "from w2v_tf.errors import UserError, run_main\n"
         "def main(argv):\n"
         "  if sys.argv[-1] == 'interrupt':\n"
         "    raise KeyboardInterrupt\n"
         "  raise UserError('the problem: the fix')\n"
         "run_main(main)\n")


@pytest.mark.parametrize("args,code,first,traceback", [
    (["--", "interrupt"], 130, "error: interrupted (nothing more was written", False),
    ([], 1, "error: the problem: the fix", False),
    (["--verbosity=1"], 1, "Traceback", True),
])
def test_run_main(tmp_path, args, code, first, traceback):
  """Ctrl-C outside the training loop is one line and exit 130; --verbosity=1 shows tracebacks."""
  script = tmp_path / "binary.py"
  script.write_text(_MAIN, encoding="utf-8")
  run = subprocess.run([sys.executable, str(script), *args], cwd=REPO, env=ENV,
                       capture_output=True, text=True, timeout=60, check=False)
  assert run.returncode == code, run.stderr
  lines = run.stderr.strip().splitlines()
  assert lines[0].startswith(first), run.stderr
  assert ("Traceback" in run.stderr) == traceback
  if not traceback:
    assert len(lines) == 1, run.stderr
