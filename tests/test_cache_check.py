"""The cache's checksums and structure checks (`w2v_tf.cache_check`), through the binaries.

One table of damaged caches: each case copies a good cache, damages one file the way a disk, a
tool or a person might (reversed counts, swapped types, shuffled tokens, ids >= V, garbage or
unsorted offsets, meta.json a list, a file deleted / truncated / emptied, a chunk file
damaged), runs `python -m w2v_tf.data` (the corpus files) or `python -m w2v_tf.train` (the
training chunks) on it, and checks: exit 0, exactly one `warning:` line saying it is rebuilt,
no other warning or error, and the result equal to the good cache's (the dump, or the chunk
files byte for byte). Before checksums, sizes were all that was checked: most of these trained
with exit 0 on wrong data, the rest ended in 30-43-line tracebacks.
"""

import concurrent.futures
import dataclasses
import json
import os
import random
import re
import shutil

import numpy as np
import pytest

from tests.binaries import module_runner
from tests.test_errors import ENV, REPO, _csv, _reviews
from w2v_tf import cache_check, corpus_store

_DATA = ["--stopwords=none"]
_TRAIN = ["--stopwords=none", "--epochs=1", "--batch_size=64", "--sample_group_centers=64",
          "--embedding_dim=8", "--min_count=1", "--num_sampled=8", "--nojit_compile",
          "--noprogress", "--heldout_documents=2"]


def _numbers(path, dtype):
  return np.fromfile(path, dtype)


def _rewrite(path, values):
  np.asarray(values).tofile(path)


def _swap_types(path):
  lines = open(path, encoding="utf-8").read().splitlines(keepends=True)
  lines[0], lines[1] = lines[1], lines[0]
  with open(path, "w", encoding="utf-8") as f:
    f.write("".join(lines))


def _shuffle(path):
  values = _numbers(path, np.int32)
  _rewrite(path, np.random.default_rng(0).permutation(values))


def _id_above_v(path):
  values = _numbers(path, np.int32)
  values[len(values) // 2] = 1000
  _rewrite(path, values)


def _garbage(path):
  size = os.path.getsize(path)
  with open(path, "wb") as f:
    f.write(random.Random(1).randbytes(size))


def _unsorted_offsets(path):
  values = _numbers(path, np.int64)
  values[3], values[4] = values[4], values[3]
  _rewrite(path, values)


def _truncate(path):
  os.truncate(path, os.path.getsize(path) // 2)


def _empty(path):
  os.truncate(path, 0)


def _flip_byte(path):
  data = bytearray(open(path, "rb").read())
  data[len(data) // 3] ^= 0xFF
  open(path, "wb").write(bytes(data))


def _write(text):
  def damage(path):
    with open(path, "w", encoding="utf-8") as f:
      f.write(text)
  return damage


@dataclasses.dataclass
class Damage:
  """One damaged file: `file` under the corpus folder (`chunks/...`: the training chunks'
  folder), `how` changes it (None: deleted), `message` a regex of the warning line."""
  name: str
  file: str
  how: object
  message: str


DAMAGES = [
    Damage("counts-reversed", "counts.i64", lambda p: _rewrite(p, _numbers(p, np.int64)[::-1]),
           r"counts\.i64 is not a list of positive counts in descending order"),
    Damage("types-swapped", "types.txt", _swap_types, r"types\.txt fails its checksum"),
    Damage("tokens-shuffled", "tokens.i32", _shuffle, r"tokens\.i32 fails its checksum"),
    Damage("tokens-id-above-v", "tokens.i32", _id_above_v,
           r"tokens\.i32 holds the id 1,000, outside the \d+ types"),
    Damage("tokens-byte-flipped", "tokens.i32", _flip_byte, r"tokens\.i32"),
    Damage("tokens-deleted", "tokens.i32", None, r"tokens\.i32 is missing"),
    Damage("tokens-truncated", "tokens.i32", _truncate, r"disagree on the token count"),
    Damage("tokens-empty", "tokens.i32", _empty, r"disagree on the token count"),
    Damage("offsets-garbage", "offsets.i64", _garbage, r"offsets"),
    Damage("offsets-unsorted", "offsets.i64", _unsorted_offsets, r"offsets\.i64 is not sorted"),
    Damage("offsets-deleted", "offsets.i64", None, r"offsets\.i64 is missing"),
    Damage("types-deleted", "types.txt", None, r"types\.txt is missing"),
    Damage("types-not-utf8", "types.txt", _garbage, r"cannot read it|types\.txt"),
    Damage("meta-a-list", "meta.json", _write("[1, 2]"), r"meta\.json holds a JSON list"),
    Damage("meta-garbage", "meta.json", _write("{not json"), r"cannot read it \(Expecting"),
    Damage("meta-wrong-type", "meta.json",
           _write('{"version": 1, "num_tokens": "6000", "num_documents": 200}'),
           r"meta\.json's 'num_tokens' is '6000'"),
    Damage("meta-deleted", "meta.json", None, r"meta\.json is missing"),
    Damage("manifest-deleted", "manifest.json", None,
           r"it has no manifest\.json, so its files cannot be checked \(an earlier version"),
    Damage("manifest-garbage", "manifest.json", _garbage, r"manifest\.json is unreadable"),
    Damage("manifest-a-list", "manifest.json", _write("[]"), r"manifest\.json is not a manifest"),
    # The training chunks (read by the trainer only).
    Damage("chunk-deleted", "chunks/chunk-000000.i32", None, r"chunk-000000\.i32 is missing"),
    Damage("chunk-truncated", "chunks/chunk-000000.i32", _truncate,
           r"chunk-000000\.i32 holds [\d,]+ bytes, its writer wrote"),
    Damage("chunk-empty", "chunks/chunk-000000.i32", _empty, r"chunk-000000\.i32 holds 0 bytes"),
    Damage("chunk-garbage", "chunks/chunk-000000.i32", _garbage,
           r"chunk-000000\.i32('s header| fails its checksum)"),
    Damage("chunk-shuffled", "chunks/chunk-000000.i32", _shuffle, r"chunk-000000\.i32"),
    Damage("chunks-manifest-deleted", "chunks/manifest.json", None, r"has no manifest\.json"),
]


def _corpus_folder(cache):
  (name,) = [n for n in os.listdir(cache) if n.startswith("corpus-v")]
  return os.path.join(cache, name)


def _chunk_folders(corpus):
  return sorted(os.path.join(corpus, n) for n in os.listdir(corpus) if n.startswith("chunks-"))


fixture_runner = module_runner(REPO, ENV, workers=2)


@pytest.fixture(name="good", scope="module")
def fixture_good(tmp_path_factory, runner):
  """A CSV, its cache (with the trainer's chunks) and the reference dump."""
  tmp = tmp_path_factory.mktemp("good")
  csv = tmp / "good.csv"
  csv.write_text(_csv(_reviews(200)), encoding="utf-8")
  cache = tmp / "cache"
  run = runner.run("w2v_tf.train", [f"--train_csv={csv}", f"--cache_dir={cache}",
                                    f"--model_dir={tmp / 'm'}", *_TRAIN])
  assert run.returncode == 0, run.stderr
  run = runner.run("w2v_tf.data", [f"--train_csv={csv}", f"--cache_dir={cache}",
                                   f"--dump_tokens={tmp / 'dump.txt'}", *_DATA])
  assert run.returncode == 0 and "warning" not in run.stderr, run.stderr
  return {"csv": str(csv), "cache": str(cache), "dump": (tmp / "dump.txt").read_text()}


def _chunk_bytes(corpus):
  return {os.path.basename(folder): {n: open(os.path.join(folder, n), "rb").read()
                                     for n in sorted(os.listdir(folder))}
          for folder in _chunk_folders(corpus)}


def _run_damage(runner, good, damage, root):
  cache = os.path.join(root, "cache")
  shutil.copytree(good["cache"], cache)
  corpus = _corpus_folder(cache)
  path = (os.path.join(_chunk_folders(corpus)[0], damage.file.split("/", 1)[1])
          if damage.file.startswith("chunks/") else os.path.join(corpus, damage.file))
  if damage.how is None:
    os.remove(path)
  else:
    damage.how(path)
  if damage.file.startswith("chunks/"):
    run = runner.run("w2v_tf.train", [f"--train_csv={good['csv']}", f"--cache_dir={cache}",
                                      f"--model_dir={root}/m", *_TRAIN])
  else:
    run = runner.run("w2v_tf.data", [f"--train_csv={good['csv']}", f"--cache_dir={cache}",
                                      f"--dump_tokens={root}/dump.txt", *_DATA])
  return run, cache


@pytest.fixture(name="results", scope="module")
def fixture_results(runner, good, tmp_path_factory, request):
  """Runs the selected cases two at a time: {name: ((run, cache), root)}."""
  selected = {item.callspec.params["damage"].name for item in request.session.items
              if hasattr(item, "callspec") and "damage" in item.callspec.params}
  roots = tmp_path_factory.mktemp("damaged")
  with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
    futures = {}
    for damage in (d for d in DAMAGES if d.name in selected):
      root = roots / damage.name
      root.mkdir()
      futures[damage.name] = pool.submit(_run_damage, runner, good, damage, str(root))
    return {name: (future.result(), str(roots / name)) for name, future in futures.items()}


@pytest.mark.slow  # 26 runs of the binaries: ~110 s on a busy 2-core machine
@pytest.mark.parametrize("damage", DAMAGES, ids=[d.name for d in DAMAGES])
def test_a_damaged_cache_is_rebuilt_with_one_warning(results, good, damage):
  (run, cache), root = results[damage.name]
  assert "Traceback" not in run.stderr, run.stderr
  assert run.returncode == 0, run.stderr
  lines = [line for line in run.stderr.splitlines() if line.strip()]
  flagged = [line for line in lines if line.startswith(("warning:", "error:"))]
  assert len(flagged) == 1, run.stderr
  what = "the training chunks" if damage.file.startswith("chunks/") else "the corpus cache"
  assert flagged[0].startswith(f"warning: ignoring {what} "), flagged[0]
  assert flagged[0].endswith(("; rebuilding it", "; rebuilding them")), flagged[0]
  assert re.search(damage.message, flagged[0]), flagged[0]
  corpus = _corpus_folder(cache)
  assert not [n for n in os.listdir(cache) if ".tmp-" in n]
  corpus_store.StoredCorpus(corpus)  # the rebuilt cache passes its checks
  if damage.file.startswith("chunks/"):
    assert _chunk_bytes(corpus) == _chunk_bytes(_corpus_folder(good["cache"]))
  else:
    with open(os.path.join(root, "dump.txt"), encoding="utf-8") as f:
      assert f.read() == good["dump"]


# --- Structure checks that checksums do not reach (a writer's bug, a re-recorded manifest) --

def _small_cache(tmp_path):
  writer = corpus_store.CorpusWriter(str(tmp_path / "corpus-x"))
  words = np.array([b"a", b"b", b"c"], dtype=object)
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  keys = corpus_store.fingerprints(tf.constant(words.tolist())).numpy()
  ids = writer.add_words(keys, words, np.array([3, 2, 1], np.int64))
  writer.add_tokens(ids[[0, 0, 1, 0, 1, 2]], np.array([2, 0, 3, 1], np.int64))
  return writer.finish({})


@pytest.mark.parametrize("file,change,message", [
    ("tokens.i32", lambda v: np.r_[v[:-1], 9].astype(np.int32), r"holds the id 9, outside"),
    ("tokens.i32", lambda v: np.r_[v[:-1], -2].astype(np.int32), r"holds the id -2"),
    ("offsets.i64", lambda v: v[[0, 1, 3, 2, 4]], r"offsets\.i64 is not sorted \(document 2"),
    ("offsets.i64", lambda v: np.r_[v[:-1], 99], r"disagree on the token count"),
    ("counts.i64", lambda v: v[::-1], r"descending order"),
    ("counts.i64", lambda v: v[:-1], r"types\.txt holds 3 words, counts\.i64 2 counts"),
])
def test_structure_checks(tmp_path, file, change, message):
  corpus = _small_cache(tmp_path)
  dtype = np.int32 if file.endswith(".i32") else np.int64
  path = os.path.join(corpus.path, file)
  change(np.fromfile(path, dtype)).astype(dtype).tofile(path)
  cache_check.record(corpus.path, ["tokens.i32", "offsets.i64", "types.txt", "counts.i64",
                                   "meta.json"])  # checksums that match the damage
  with pytest.raises(corpus_store.CacheError, match=message):
    corpus_store.StoredCorpus(corpus.path)


def test_meta_json_must_be_an_object_with_the_keys_the_reader_uses(tmp_path):
  corpus = _small_cache(tmp_path)
  path = os.path.join(corpus.path, "meta.json")
  for meta, message in (([], "holds a JSON list"), ({"version": 1}, "has no 'num_tokens'"),
                        ({**corpus.meta, "pruned_tokens": True}, "'pruned_tokens' is True")):
    with open(path, "w", encoding="utf-8") as f:
      json.dump(meta, f)
    with pytest.raises(corpus_store.CacheError, match=message):
      corpus_store.StoredCorpus(corpus.path)


def test_the_checksums_are_made_while_writing(tmp_path):
  """The manifest the writer made as it wrote equals one made by reading the files back."""
  corpus = _small_cache(tmp_path)
  written = cache_check.read_manifest(corpus.path)
  cache_check.record(corpus.path, sorted(written))
  assert cache_check.read_manifest(corpus.path) == written
