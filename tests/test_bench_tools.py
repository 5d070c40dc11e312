"""The throughput benchmark's pairing tools (benchmarks/bench_gui_training.py): what its figures rest on."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs CPU affinity and two cores")
def test_the_swapper_moves_each_side_between_the_two_cores_in_turn():
    """Each swap stops both sides, re-pins them and lets them go on: they never share a core, are stopped
    only for the moment of the swap, and are left running when the swapping ends."""
    import bench_gui_training as bench

    def state(pid):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]

    cpus = tuple(sorted(os.sched_getaffinity(0))[:2])
    a = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    b = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        seen, samples, stopped = set(), 0, 0
        with bench.swapping(str(a.pid), str(b.pid), cpus, 0.05):
            end = time.perf_counter() + 1.0
            while time.perf_counter() < end:
                pair = (frozenset(os.sched_getaffinity(a.pid)), frozenset(os.sched_getaffinity(b.pid)))
                assert pair[0] != pair[1] and all(len(s) == 1 for s in pair)  # never on the same core
                seen.add(pair[0])
                samples += 2
                stopped += (state(a.pid) == "T") + (state(b.pid) == "T")
                time.sleep(0.01)
        assert seen == {frozenset({cpus[0]}), frozenset({cpus[1]})}
        assert stopped <= samples // 5, f"stopped in {stopped} of {samples} looks"
        time.sleep(0.05)
        assert state(a.pid) != "T" and state(b.pid) != "T"  # (left running)
    finally:
        a.kill()
        b.kill()


def test_a_runs_seconds_exclude_the_time_it_was_stopped():
    import bench_gui_training as bench

    # trained from 10 to 16 by its clock; stopped 9-11 (1 s of it inside), 12-13 and 15.5-17 (0.5 s inside)
    assert bench.active_seconds(6.0, 16.0, [[9.0, 11.0], [12.0, 13.0], [15.5, 17.0]]) == pytest.approx(3.5)
