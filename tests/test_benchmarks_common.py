"""benchmarks.common: the CPU a figure was measured on, memory, JSON, work folders, workers."""

import json
import math
import os

import pytest

from benchmarks import common
from w2v_tf.errors import UserError


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


def test_peak_rss_is_this_process_high_water_mark():
  assert 1 < common.peak_rss_mb() < 1 << 20


def test_median_leaves_out_missing_values():
  assert common.median([3.0, None, 1.0, float("nan"), 2.0]) == 2.0
  assert math.isnan(common.median([None, float("nan")]))


def test_format_value_marks_missing_values():
  assert common.format_value(1234.5, "{:,.0f}") == "1,234"
  assert common.format_value(None, "{:.1f}") == common.format_value(float("nan"), "{:.1f}") == "–"


def test_write_json_sorts_keys_and_keeps_nan(tmp_path, capsys):
  path = tmp_path / "sub" / "out.json"
  common.write_json(str(path), {"b": float("nan"), "a": [1]}, echo=False)
  assert path.read_text(encoding="utf-8") == '{\n  "a": [\n    1\n  ],\n  "b": NaN\n}\n'
  captured = capsys.readouterr()
  assert captured.out == "" and captured.err == f"wrote {path}\n"
  common.write_json(None, {"a": 1})
  assert json.loads(capsys.readouterr().out) == {"a": 1}


def test_work_folder_keeps_a_given_folder_and_removes_a_temporary_one(tmp_path):
  kept = tmp_path / "kept"
  with common.work_folder(str(kept), "unused-") as path:
    assert path == str(kept) and kept.is_dir()
  assert kept.is_dir()
  with common.work_folder(None, "w2v-test-") as path:
    assert os.path.basename(path).startswith("w2v-test-") and os.path.isdir(path)
  assert not os.path.exists(path)


# A worker in its own process: reads its spec, answers through write_worker_result.
_WORKER = ("import sys; from benchmarks import common; "
           "spec = common.read_worker_spec(sys.argv[1].split('=', 1)[1]); "
           "sys.exit(3) if spec['fail'] else "
           "common.write_worker_result(spec, {'twice': 2 * spec['x']})")


def test_a_worker_process_answers_its_spec(tmp_path):
  result = common.run_worker_process("tiny", ["-c", _WORKER], {"x": 21, "fail": False},
                                     str(tmp_path / "run"))
  assert result["twice"] == 42
  assert result["peak_rss_mb"] > 1 and result["process_seconds"] > 0
  assert "load_average_before" in result
  spec = json.loads((tmp_path / "run" / "spec.json").read_text(encoding="utf-8"))
  assert spec["name"] == "tiny" and spec["result_path"] == str(tmp_path / "run" / "result.json")


def test_a_failed_worker_process_is_one_error(tmp_path):
  with pytest.raises(UserError, match=r"^the tiny run failed \(exit code 3\)"):
    common.run_worker_process("tiny", ["-c", _WORKER], {"x": 1, "fail": True}, str(tmp_path))
