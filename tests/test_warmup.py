"""``--warmup D``: the first D seconds of the schedule are sent but not judged; the summary holds
the hold's samples alone and its sent and completed counts. A real storm against the target."""

from __future__ import annotations

import pytest
from storm import fleet_options, heartbeats, read_request_log, run_storm
from target_process import running_target

from certctl_load import exitcodes

pytestmark = pytest.mark.e2e


def test_beats_due_in_the_warmup_are_sent_and_count_nowhere_in_the_summary(tmp_path):
    log_path = tmp_path / "requests.jsonl"
    with running_target("--fleet-size", "20", request_log=log_path) as target:
        run = run_storm(target.url, tmp_path / "results", *fleet_options(20, 1.0, 4, "--warmup", "2s"))
        log = read_request_log(log_path)
    assert run.code == exitcodes.OK, run.stdout[-2000:] + run.stderr[-2000:]
    assert len(heartbeats(log)) == 80  # 20 agents, 4 s of one beat a second: all sent
    summary = run.summary()
    assert summary["metrics"]["http_reqs"]["values"]["count"] == 40  # the hold's 2 s alone
    assert summary["metrics"]["iterations"]["values"]["count"] == 40
    assert summary["state"]["testRunDurationMs"] == pytest.approx(2000, abs=500)
    hold = summary["hold"]
    assert hold["from_s"] == 2 and hold["duration_s"] == 2
    assert 38 <= hold["sent"] <= 40 and 38 <= hold["completed"] <= hold["sent"]  # the loose edges of the hold
    line = f"warm-up: the first 2s were not judged; in the 2s hold {hold['sent']} requests were sent and "
    assert line + f"{hold['completed']} completed" in run.text_summary()
