"""The bench scripts run end to end (``--smoke``) and write sane result files.

Each script runs as a subprocess, the way a user runs it, with ``--out`` in a
temp dir so recorded results in bench/results are never touched.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.engine


def run_script(name: str, out: Path, *extra: str, timeout: float = 900) -> dict:
    cmd = [sys.executable, f"bench/{name}.py", "--smoke", "--out", str(out), "--tag", "smoke", *extra]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}"
    data = json.loads((out / f"{name}-smoke.json").read_text())
    md = (out / f"{name}-smoke.md").read_text()
    assert data["command"].startswith(f"python bench/{name}.py --smoke")
    assert data["command"] in md
    assert data["smoke"] is True
    for key in ("cpu_model", "cpu_cores", "versions", "python"):
        assert key in data["machine"]
    return data


def test_throughput_smoke(tmp_path):
    data = run_script("throughput", tmp_path)
    assert data["benchmark"] == "throughput"
    assert data["model"]["chosen"] == "tiny-random"
    assert data["model"]["lokiformer_params"] > 0 and data["model"]["llama_params"] > 0
    settings = data["settings"]
    assert set(data["results"]) == {str(b) for b in settings["batch_sizes"]}
    for b, row in data["results"].items():
        for model in ("lokiformer", "llama"):
            m = row[model]
            assert m["output_tok_s"] > 0 and m["total_tok_s"] > m["output_tok_s"]
            assert m["output_tokens_per_call"] == int(b) * settings["output_len"]  # ignore_eos: every token generated
            assert m["prompt_tokens_per_call"] == int(b) * settings["input_len"]
        assert row["ratio_output"] == pytest.approx(row["lokiformer"]["output_tok_s"] / row["llama"]["output_tok_s"])
        assert 0 < row["ratio_output"] < 100
        # interleaved: one pair of back-to-back calls per repeat and round
        assert len(row["ratio_output_pairs"]) == settings["repeats"] * settings["rounds"]
        if len(row["ratio_output_pairs"]) == 1:  # the smoke run: one call per model, so one pair
            assert row["ratio_output_paired_median"] == pytest.approx(row["ratio_output"])
    assert data["target"]["batch"] == 32 and data["target"]["min_ratio"] == 0.90
    assert (tmp_path / "throughput-smoke.png").is_file()


def test_swap_under_load_smoke(tmp_path):
    data = run_script("swap_under_load", tmp_path)
    assert data["benchmark"] == "swap_under_load"
    assert data["failed_requests"] == 0
    for phase in ("baseline", "swaps"):
        ph = data["phases"][phase]
        assert ph["failed"] == 0, ph["errors"]
        assert ph["ok"] == ph["sent"] > 0
        assert ph["requests_per_s"] > 0 and ph["output_tok_per_s"] > 0
        lat = ph["latency_s"]
        assert 0 < lat["p50"] <= lat["p99"] <= lat["max"]
    sw = data["swaps"]
    assert sw["count"] >= 2 and sw["failed"] == 0 and sw["by_op"]["zero"] >= 1 and sw["by_op"]["put"] >= 1
    assert 0 < sw["seconds"]["p50"] <= sw["seconds"]["max"]
    assert data["p99_rise_pct"] is not None and "p99_rise_pct" in data["targets"]
    # The field ends where it started.
    assert data["field"]["final_state"] == "active" and data["field"]["final_sha256_matches"]


def test_kmm_cpu_smoke(tmp_path):
    data = run_script("kmm_cpu", tmp_path, timeout=300)
    assert data["benchmark"] == "kmm_cpu"
    assert [r["tokens"] for r in data["rows"]] == [1, 64]
    for r in data["rows"]:
        assert r["reference_ms"] > 0 and r["cpu_ms"] > 0
        assert r["speedup"] == pytest.approx(r["reference_ms"] / r["cpu_ms"])
        assert r["speedup_pytorch"] == pytest.approx(r["reference_ms"] / r["cpu_pytorch_ms"])
        assert r["max_abs_err"] < 1e-4  # the CPU path computes the reference's answer


def test_memory_cost_smoke(tmp_path):
    """bench/memory_cost.py --smoke: one paired throughput run per slot count, tabulated."""
    cmd = [sys.executable, "bench/memory_cost.py", "--smoke", "--out", str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    data = json.loads((tmp_path / "throughput-smoke-memory-cost.json").read_text())
    rows = data["rows"]
    assert [r["slots_per_field"] for r in rows] == [16, 32] and all(r["live_fields"] == 2 for r in rows)
    assert all(r["paired_ratio"] > 0 for r in rows)
    assert rows[0]["memory_macs_share"] < rows[1]["memory_macs_share"]  # more slots, more of the work
    assert data["command"].startswith("python bench/memory_cost.py --smoke")
