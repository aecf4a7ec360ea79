"""allocator: after TensorFlow's generator dataset a freed 24 MB block is reused; freed heap pages go back."""

import json
import os
import platform
import subprocess
import sys

import pytest

from w2v_tf import allocator

# In a fresh process: the malloc settings are process-wide. Page faults of allocating, touching
# and freeing a 24 MB block 20 times: each cycle faults its 6,144 pages in again when the block
# is a fresh mmap (after TensorFlow's patch), and only the first cycle does once it is in the heap.
_PROBE = r"""
import ctypes, json, resource
import tensorflow as tf
from w2v_tf import allocator

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]

def faults(cycles=20, size=24 << 20):
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  for _ in range(cycles):
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
  return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

signature = tf.TensorSpec([], tf.int32)
list(tf.data.Dataset.from_generator(lambda: iter([1, 2]), output_signature=signature))
after_generator = faults()
applied = allocator.keep_large_buffers()
print(json.dumps({"after_generator": after_generator, "applied": applied,
                  "after_keep": faults()}))
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="glibc malloc only")
def test_large_blocks_stay_in_the_heap_after_a_generator_dataset():
  result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                          check=True, timeout=300)
  faults = json.loads(result.stdout.strip().splitlines()[-1])
  assert faults["applied"]
  pages = 20 * (24 << 20) // 4096
  # TensorFlow's threshold: every cycle maps the block afresh (the premise of the fix).
  assert faults["after_generator"] > 0.8 * pages, faults
  # Ours: the block is reused from the heap; only the first cycle touches new pages.
  assert faults["after_keep"] < 0.2 * pages, faults


# 3,000 64 KiB blocks, every tenth kept: glibc keeps the pages of the 2,700 freed ones between
# them (only the top of a heap shrinks on free), until `release_free_memory`.
_FREED_PAGES_PROBE = r"""
import ctypes, json
from w2v_tf import allocator

libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]

def rss_mib():
  with open("/proc/self/status") as f:
    return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024

blocks = [libc.malloc(64 << 10) for _ in range(3000)]
for block in blocks:
  ctypes.memset(block, 1, 64 << 10)
for index, block in enumerate(blocks):
  if index % 10:
    libc.free(block)
freed = rss_mib()
released = allocator.release_free_memory()
print(json.dumps({"freed": freed, "released": released, "after": rss_mib()}))
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="glibc malloc only")
def test_freed_heap_pages_go_back_to_the_system():
  result = subprocess.run([sys.executable, "-c", _FREED_PAGES_PROBE], capture_output=True,
                          text=True, check=True, timeout=120)
  rss = json.loads(result.stdout.strip().splitlines()[-1])
  assert rss["released"], rss
  # 2,700 x 64 KiB = 169 MiB were free but resident; most of it leaves.
  assert rss["freed"] > 150 and rss["freed"] - rss["after"] > 120, rss


# Arenas (glibc's heaps, counted from `malloc_info`) after tf.data runs a map on 4 threads: glibc
# gives each new thread its own, up to 8 per core, unless `limit_arenas` ran first.
_ARENAS_PROBE = r"""
import ctypes, json, os, re, sys, tempfile
import tensorflow as tf
from w2v_tf import allocator

libc = ctypes.CDLL("libc.so.6")
libc.fdopen.restype = ctypes.c_void_p
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]

def arenas():
  with tempfile.TemporaryFile() as f:
    stream = libc.fdopen(os.dup(f.fileno()), b"w")
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    f.seek(0)
    return len(re.findall(rb"<heap nr=", f.read()))

limited = allocator.limit_arenas(2) if sys.argv[1] == "limit" else False
dataset = tf.data.Dataset.range(400).map(
    lambda x: tf.random.stateless_uniform([20000], tf.stack([x, x])), num_parallel_calls=4)
for _ in dataset.batch(8):
  pass
print(json.dumps({"limited": limited, "arenas": arenas()}))
"""


def _arenas(mode: str, arena_max: str | None = None) -> dict:
  env = {key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"}
  if arena_max is not None:
    env["MALLOC_ARENA_MAX"] = arena_max
  result = subprocess.run([sys.executable, "-c", _ARENAS_PROBE, mode], capture_output=True,
                          text=True, check=True, timeout=300, env=env)
  return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="glibc malloc only")
def test_tensorflow_threads_share_the_arenas_limit_arenas_allows():
  limited = _arenas("limit")
  assert limited["limited"] and limited["arenas"] <= 2, limited
  # The premise: without the limit each of TensorFlow's threads opens its own (up to 8 a core).
  default = _arenas("default")
  assert default["arenas"] > 2, default


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="glibc malloc only")
def test_an_arena_limit_in_the_environment_wins():
  result = _arenas("limit", arena_max="1")
  assert not result["limited"] and result["arenas"] == 1, result


# Page faults of 20 malloc / touch / free cycles of an 8 MiB block (`_PROBE`'s helpers).
_THRESHOLD_PROBE = _PROBE.split("signature = ")[0] + r"""
fixed = allocator.fix_mmap_threshold(4 << 20)
print(json.dumps({"fixed": fixed, "large": faults(size=8 << 20)}))
"""


def _threshold_probe(env=None):
  result = subprocess.run([sys.executable, "-c", _THRESHOLD_PROBE], capture_output=True,
                          text=True, check=True, timeout=120, env=env)
  return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="glibc malloc only")
def test_fixed_mmap_threshold_gives_large_blocks_back_and_the_environment_wins():
  pages = 20 * (8 << 20) // 4096
  faults = _threshold_probe()
  assert faults["fixed"], faults
  # Above 4 MiB every cycle maps the block afresh: it goes back to the system when freed.
  assert faults["large"] > 0.8 * pages, faults
  # The environment's thresholds stay: the block is reused from the heap after the first cycle.
  env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(32 << 20), MALLOC_TRIM_THRESHOLD_=str(64 << 20))
  kept = _threshold_probe(env)
  assert not kept["fixed"] and kept["large"] < 0.2 * pages, kept


def test_periodic_release_waits_its_interval(monkeypatch):
  now, calls = [100.0], []
  monkeypatch.setattr(allocator, "release_free_memory", lambda: calls.append(now[0]) or True)
  release = allocator.PeriodicRelease(30.0, clock=lambda: now[0])
  assert not release()  # just created
  now[0] = 129.9
  assert not release()
  now[0] = 130.0
  assert release() and calls == [130.0]
  now[0] = 150.0
  assert not release() and calls == [130.0]  # 20 s since the last release
  now[0] = 160.5
  assert release() and calls == [130.0, 160.5]


# In a fresh process: what the train binary imports, then its runner (the first TensorFlow work
# of a run), then a tensor; TF's BFC pool answers `get_memory_info`, plain malloc raises.
_POOL_PROBE = r"""
import json
import w2v_tf.train  # everything the binary imports: none may allocate a tensor
from w2v_tf import config, strategies
strategies.make_runner(config.RuntimeConfig(), print)
import tensorflow as tf
tf.ones([1000])
try:
  pooled = tf.config.experimental.get_memory_info("CPU:0")["peak"] > 0
except ValueError:  # "Allocator stats not available": the malloc allocator
  pooled = False
print(json.dumps({"pooled": pooled}))
"""


def _pool_probe(**env):
  base = {key: value for key, value in os.environ.items()
          if key != allocator.TF_BFC_VARIABLE}
  result = subprocess.run([sys.executable, "-c", _POOL_PROBE], capture_output=True, text=True,
                          check=True, timeout=120, env={**base, **env})
  return json.loads(result.stdout.strip().splitlines()[-1])


def test_training_uses_tensorflows_pool_unless_the_environment_says_otherwise():
  assert _pool_probe() == {"pooled": True}
  assert _pool_probe(**{allocator.TF_BFC_VARIABLE: "false"}) == {"pooled": False}
