"""bench/convergence.py and bench/decode_step.py --smoke run end to end and report what they measured."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_convergence_smoke_writes_a_consistent_report(tmp_path):
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "convergence.py"), "--smoke", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    record = json.loads((tmp_path / "convergence-cpu.json").read_text())
    (run,) = record["results"]
    lk, base = run["lokiformer"], run["baseline"]
    assert abs(lk["params"] - base["params"]) / lk["params"] <= 0.02
    assert lk["curve"][-1]["step"] == base["curve"][-1]["step"] == record["settings"]["steps"]
    # training lowered the loss for both models
    assert lk["curve"][-1]["val_loss"] < lk["curve"][0]["val_loss"]
    assert base["curve"][-1]["val_loss"] < base["curve"][0]["val_loss"]
    assert run["baseline_final_val_loss"] == base["curve"][-1]["val_loss"]
    if run["steps_ratio"] is not None:
        assert abs(run["steps_ratio"] - record["settings"]["steps"] / run["lokiformer_steps_to_baseline_final"]) < 1e-9
    assert (tmp_path / "convergence-cpu.png").stat().st_size > 1000
    assert "steps ratio" in (tmp_path / "convergence-cpu.md").read_text()


def test_decode_step_smoke_times_every_variant(tmp_path):
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "decode_step.py"), "--smoke", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (path,) = tmp_path.glob("decode_step-*.json")
    record = json.loads(path.read_text())
    assert [r["batch"] for r in record["rows"]] == [1, 4]
    for row in record["rows"]:
        assert row["no_kmm_ms"] > 0 and row["kmm_reference_ms"] > 0
        assert abs(row["kmm_reference_vs_no_kmm"] - row["kmm_reference_ms"] / row["no_kmm_ms"]) < 0.01
