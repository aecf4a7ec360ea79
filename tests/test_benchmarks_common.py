"""benchmarks.common: the CPU a figure was measured on."""

import os

import pytest

from benchmarks import common


def test_cpu_isa_reads_the_flags_line(tmp_path):
  cpuinfo = tmp_path / "cpuinfo"
  cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU\n"
                     "flags\t\t: fpu sse2 avx2 avx512f amx_tile\n\nprocessor\t: 1\n"
                     "flags\t\t: fpu avx512_bf16\n", encoding="utf-8")
  # The first CPU's line, in CPU_ISA_FLAGS order; flags that are not listed are absent.
  assert common.cpu_isa(str(cpuinfo)) == ["avx2", "avx512f", "amx_tile"]


def test_cpu_isa_without_cpuinfo_is_empty(tmp_path):
  assert common.cpu_isa(str(tmp_path / "missing")) == []


@pytest.mark.skipif(not os.path.exists("/proc/cpuinfo"), reason="Linux's /proc/cpuinfo")
def test_cpu_model_names_a_cpu():
  # lscpu's or /proc/cpuinfo's name, not the fallback.
  assert common.cpu_model().strip() not in ("", "unknown")
