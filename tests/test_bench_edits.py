"""The editing benchmarks run end to end as a user runs them, with results
in a temp dir: sequential (lifelong) edits on the demo, and a live edit
through a real ``lokiserve serve`` timed from request to applied."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine_utils import demo_available

REPO = Path(__file__).resolve().parents[1]
needs_demo = pytest.mark.skipif(not demo_available(), reason="needs the shipped demo")


def run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


@needs_demo
def test_sequential_demo_edits_report_each_write_and_the_end(tmp_path):
    out = tmp_path / "seq.md"
    r = run("bench/edit_facts.py", "--suite", "demo", "--sequential", "3", "--max-retain", "60", "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    (row,) = json.loads(out.with_suffix(".json").read_text())
    assert row["suite"] == "demo-sequential" and row["edits"] == 3 and row["writes"] == 3
    assert [w["facts_so_far"] for w in row["per_write"]] == [1, 2, 3]
    for key in ("efficacy_all_at_end", "first_half_at_end", "unchanged_still_correct"):
        assert 0.0 <= row[key] <= 1.0, key
    assert "3 edits one write after another" in out.read_text()


@pytest.mark.engine
@needs_demo
def test_live_edit_is_timed_from_request_to_served_answer(tmp_path):
    r = run("bench/live_edit.py", "--sizes", "0", "--out", str(tmp_path))
    assert r.returncode == 2 and "--sizes must be positive" in r.stderr
    r = run("bench/live_edit.py", "--sizes", "1", "--tag", "t", "--out", str(tmp_path))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    data = json.loads((tmp_path / "live_edit-t.json").read_text())
    (row,) = data["results"]
    assert data["field"] == "geography" and row["facts"] == 1
    assert row["status"] == 200 and row["passed"] is True and row["request_to_applied_s"] > 0
    assert row["served_prompts"] == 1.0  # the served model gives the new answer
    assert data["command"] in (tmp_path / "live_edit-t.md").read_text()
