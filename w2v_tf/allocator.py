"""Memory settings for training: TensorFlow's own pool for its CPU tensors (`prepare_process`, see
`pool_tensorflow_memory`), and glibc malloc's: large buffers stay in the heap, free pages go back
now and then, and TensorFlow's threads share a few heaps (arenas), not one each.

TensorFlow's `GeneratorDatasetOp` (built by any `tf.data.Dataset.from_generator`, as the corpus
pass streams its text) calls `mallopt(M_MMAP_THRESHOLD, 128 KiB)` once per process
(`tensorflow::data::ApplyPython311MemoryPatch`, found with a breakpoint on `mallopt`). That fixes
glibc's threshold, which otherwise rises to the largest block freed (up to 32 MiB): afterwards every
allocation over 128 KiB is a fresh `mmap` whose pages fault in again, and a training step allocates
and frees a ~23 MB buffer each time (strace: 176 mmap/munmap a second while training).

Measured on IMDB, 1 epoch, defaults (AMD EPYC, 2 cores): a run that cleaned its corpus in the same
process ("cold") trained at 70k words/s with 10.5M minor page faults and 49 s of system time, the
same run on the cached corpus ("warm", no generator) at 100k with 0.84M faults and 6 s. With
`keep_large_buffers()` once the generator op exists (`corpus.tokenize` calls it after its first
batch) the cold run trains at 104k words/s; its peak RSS goes
from 1,050 to 1,190 MiB (the warm run's is 1,300 either way). A 4 MiB threshold left it at 71k:
the 23 MB buffer is what matters. (That step computed its loss in one slice; the step in two
slices makes no such buffer: at a fixed 4 MiB threshold, below, a warm 5-epoch run faulted 0.58M
pages against 0.50M.)

glibc gives each new thread its own arena, up to 8 per core, and TensorFlow runs many threads
(tf.data's, the inter- and intra-op pools, XLA's): after a TensorFlow import and one tf.data map,
11 arenas (`malloc_info`, 2 cores). Each keeps its own freed and fragmented pages, so peak RSS
depended on which thread happened to allocate what, and grew with the run's length: 1 epoch of
4x IMDB peaked at 1,193 MiB cold and 1,108-1,112 warm, 4 epochs of 1x at 1,198 cold, 1 epoch of 1x
at 1,118 warm (what `benchmarks/scale.py` reported as RSS growing with the corpus). With one arena
per core (`limit_arenas`; `MALLOC_ARENA_MAX` is the same knob) 1 epoch of 1x and of 4x peaked at
1,112 and 1,111 MiB cold, 1x at 1,042 warm, at the same words/s within this VM's noise (medians of
the trainer's intervals 259-266k against 247-301k; AMD EPYC with AVX-512, 2 cores).

glibc's threshold also moves on its own: it rises to the size of the largest mmapped block freed,
so after a chunk's ~30 MB windowing transient is freed, blocks of up to that size come from the
arenas' heaps and stay there. Training leaves it so. Fixing it at 4 MiB for training (as an
earlier step design did to save 24 MiB of peak RSS) mapped and faulted the compiled step's
buffers afresh every step: 1 epoch of IMDB, warm, one core (`taskset -c 1`), AMD EPYC with AVX2:
93k words/s, 8.8M minor page faults, 25 s of system time, peak 849 MiB; with glibc's moving
threshold 165k, 1.6M faults, 5 s, 1,013 MiB (and 197k, 0.49M faults, 2 s, 990 MiB with the
trims below once every 30 s instead of after every call of steps).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform
import time

M_TRIM_THRESHOLD = -1  # glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's largest (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit)
TRIM_THRESHOLD_BYTES = 64 << 20  # twice it, as glibc's own dynamic setting keeps it
# `PeriodicRelease`: a trim gives back ~150 MiB of free pages that the next steps fault in again;
# after every call of steps (every 50 steps or fewer) 1 epoch of IMDB took 165k words/s against
# 197k with none (one core, AMD EPYC with AVX2; module doc).
RELEASE_INTERVAL_SECONDS = 30.0


@functools.cache
def _glibc():
  """The C library if it is glibc, else None (looked up once: `libc_ver` reads the executable)."""
  if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
    return None
  return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def release_free_memory() -> bool:
  """Hands the free pages inside glibc's heaps back to the system (`malloc_trim(0)`).

  Training frees what it allocates every step (batches on tf.data's threads, the compiled step's
  buffers on XLA's), and glibc keeps the freed pages: a 5-epoch IMDB run's RSS wandered between
  1,190 and 1,458 MiB, and a trim after 300 steps gave back 147 MiB. The trainer calls this
  through `PeriodicRelease`.

  Returns:
    True if memory was released; False where the C library is not glibc or nothing was free.
  """
  libc = _glibc()
  return bool(libc is not None and libc.malloc_trim(0))


class PeriodicRelease:
  """`release_free_memory` at most once every `interval_seconds` (the trainer's loop calls it)."""

  def __init__(self, interval_seconds: float = RELEASE_INTERVAL_SECONDS, clock=time.monotonic):
    self.interval_seconds, self._clock = interval_seconds, clock
    self._last = clock()

  def __call__(self) -> bool:
    """Releases if the interval has passed since the last release (or since creation)."""
    now = self._clock()
    if now - self._last < self.interval_seconds:
      return False
    self._last = now
    return release_free_memory()


def keep_large_buffers() -> bool:
  """Sets glibc's mmap threshold to 32 MiB and its trim threshold to 64 MiB for this process.

  Returns:
    True if set; False where the C library is not glibc or the environment sets it.
  """
  return fix_mmap_threshold(MMAP_THRESHOLD_BYTES, TRIM_THRESHOLD_BYTES)


def fix_mmap_threshold(size: int, trim_threshold: int | None = None) -> bool:
  """Fixes glibc's mmap threshold at `size` bytes: larger blocks are mapped and unmapped on free.

  With `trim_threshold`, glibc's trim threshold too. A `MALLOC_MMAP_THRESHOLD_` in the
  environment is left alone.

  Returns:
    True if set; False where the C library is not glibc or the environment sets it.
  """
  settings = [(M_MMAP_THRESHOLD, size)]
  settings += [(M_TRIM_THRESHOLD, trim_threshold)] if trim_threshold is not None else []
  return _mallopt("MALLOC_MMAP_THRESHOLD_", settings)


def _mallopt(environment_name: str, settings: list[tuple[int, int]]) -> bool:
  """glibc's `mallopt(param, value)` for each setting, unless `environment_name` is set."""
  libc = _glibc()
  if libc is None or environment_name in os.environ:
    return False
  return all(libc.mallopt(param, value) for param, value in settings)


def arenas_per_process() -> int:
  """The arena limit `limit_arenas` sets: one per core this process may run on (at least 2)."""
  cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  return max(2, cores or 1)


# TensorFlow's CPU allocator is plain malloc unless TF_CPU_ALLOCATOR_USE_BFC says otherwise. Each
# compiled step mallocs and frees XLA's temporary buffer (~23 MB at 4,096 centers), so glibc
# either maps it afresh every step (a threshold under its size: 8.6M page faults an epoch) or keeps
# it in an arena, where the freed blocks of two arenas fragment (peak RSS 1,219 MiB). TF's BFC pool
# keeps the buffers it has handed out and reuses them. 1 epoch of IMDB, warm, both cores, AMD EPYC
# with AVX2, one run each on a host shared with test runs: glibc's heap 1,219 MiB peak, 1.60M
# minor faults, 5.8 s system time, 134k words/s; the BFC pool 957 MiB, 0.23M, 1.7 s, 169k.
TF_BFC_VARIABLE = "TF_CPU_ALLOCATOR_USE_BFC"


def pool_tensorflow_memory() -> bool:
  """Asks TensorFlow for its BFC pool as the CPU allocator (`TF_CPU_ALLOCATOR_USE_BFC`).

  TensorFlow reads the variable when it creates its CPU allocator, at the first tensor it
  allocates, so call this before any TensorFlow work (importing TensorFlow allocates none). A
  value already in the environment is left alone.

  Returns:
    True if set here; False if the environment had chosen.
  """
  if TF_BFC_VARIABLE in os.environ:
    return False
  os.environ[TF_BFC_VARIABLE] = "true"
  return True


def prepare_process() -> None:
  """What a process that trains or reads a corpus sets first: TF's pool and the arena limit."""
  pool_tensorflow_memory()
  limit_arenas()


@functools.cache
def limit_arenas(count: int = 0) -> bool:
  """Caps glibc's arenas at `count` (0: `arenas_per_process()`), once per process (module doc).

  glibc counts the limit when a thread first needs an arena, so call this before TensorFlow's
  threads run (importing TensorFlow starts none that allocate: one arena after it). The corpus
  pass, `load_data_corpus` and `make_runner` call it first. A `MALLOC_ARENA_MAX` in the
  environment is left alone.

  Returns:
    True if set; False where the C library is not glibc or the environment sets it.
  """
  return _mallopt("MALLOC_ARENA_MAX", [(M_ARENA_MAX, count or arenas_per_process())])
