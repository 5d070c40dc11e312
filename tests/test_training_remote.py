"""Training in a child process (engine.training.remote): what the app's Training dock runs on."""

from __future__ import annotations

import io
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.training import TrainingConfig, load_dataset
from engine.training.job import TrainingJob
from engine.training.remote import RemoteJob, TrainingProcess, loads, read_frame, write_frame
from tests import graphs

TIMEOUT = 120
ROOT = Path(__file__).resolve().parent.parent


def digits_mlp(hidden=32, **training):
    g = graphs.mlp(64, hidden, 10)
    g.name = "digits MLP"
    g.training = {"epochs": 2, "batch_size": 32, **training}
    return g, TrainingConfig.from_graph(g)


class Events:
    """A ``put`` that records every event (called from the process's reader thread)."""

    def __init__(self):
        self.items: list[tuple[str, object]] = []
        self.lock = threading.Lock()

    def __call__(self, kind, payload):
        with self.lock:
            self.items.append((kind, payload))

    def kinds(self) -> list[str]:
        return [k for k, _ in self.items]

    def of(self, kind):
        return [p for k, p in self.items if k == kind]

    def wait_for(self, test, timeout=TIMEOUT):
        deadline = time.time() + timeout
        while not test() and time.time() < deadline:
            time.sleep(0.01)
        assert test(), self.kinds()[-20:]


@pytest.fixture(scope="module")
def process():
    proc = TrainingProcess()
    assert proc.wait_ready(TIMEOUT), "the training process did not start"
    yield proc
    proc.close()


def test_frames_round_trip_small_and_large():
    buf = io.BytesIO()
    big = torch.arange(100_000, dtype=torch.float32)
    import pickle
    for obj in ("x", {"a": 1}, big):
        write_frame(buf, pickle.dumps(obj))
    buf.seek(0)
    assert read_frame(buf) == "x" and read_frame(buf) == {"a": 1}
    assert torch.equal(read_frame(buf), big)
    with pytest.raises(EOFError):
        read_frame(buf)


STOPPED_WRITER = r"""
import os, pickle, sys
from engine.training.remote import write_frame
out = os.fdopen(os.dup(1), "wb", buffering=0)  # as the training process writes its events
for i in range(12):
    write_frame(out, pickle.dumps((i, bytes([i]) * (3 << 20))))
"""


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP/SIGCONT")
def test_frames_stay_whole_when_the_writer_is_stopped_and_continued_mid_write():
    """A pipe write that waits for room returns what it wrote so far when its process is stopped and
    continued (Ctrl-Z and fg, a debugger): every large frame came out cut short, and the app waited forever
    for the rest of a run's report (found when the benchmark's turn-taking stopped the training process)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    child = subprocess.Popen([sys.executable, "-c", STOPPED_WRITER], stdout=subprocess.PIPE, env=env)
    done = threading.Event()

    def pester():
        while not done.is_set():
            os.kill(child.pid, signal.SIGSTOP)
            time.sleep(0.002)
            os.kill(child.pid, signal.SIGCONT)
            time.sleep(0.002)

    thread = threading.Thread(target=pester, daemon=True)
    thread.start()
    try:
        got = []
        for i in range(12):
            time.sleep(0.01)  # (a slow reader: the pipe fills and the writer waits in the middle of a frame)
            got.append(read_frame(child.stdout))
    except Exception:
        child.kill()  # (it would wait for a reader that has given up)
        raise
    finally:
        done.set()
        thread.join()
        os.kill(child.pid, signal.SIGCONT)
        child.wait(TIMEOUT)
    assert got == [(i, bytes([i]) * (3 << 20)) for i in range(12)]
    assert child.returncode == 0


def test_events_carry_a_tensor_sliced_from_a_larger_one_without_the_rest_of_it():
    """pickle writes a tensor's whole storage: an example sliced from the data set went to the app with the
    whole data set (1.5 MB per live-preview refresh of one 32x32 digit)."""
    import pickle

    from engine.training.remote import dumps

    data = torch.randn(400, 1, 32, 32)
    whole = torch.randn(64, 64)
    sample = data[7]
    event = (7, "preview", [sample, {"w": whole, "column": whole[:, 3], "same": sample}])
    sent = dumps(event)
    assert sent.nbytes < whole.nbytes + 3 * sample.nbytes + 4096  # (the whole data set is 1.6 MB)
    _, _, (back, parts) = loads(sent)
    assert torch.equal(back, sample) and torch.equal(parts["w"], whole)
    assert torch.equal(parts["column"], whole[:, 3]) and parts["same"] is back  # (one object, pickled once)
    assert dumps(whole).nbytes == len(pickle.dumps(whole, protocol=pickle.HIGHEST_PROTOCOL))  # a whole tensor as is


def test_large_arrays_and_tensors_travel_beside_the_pickle_as_they_were_when_sent():
    """A run's report (its weights, the examples its galleries show) was one pickle that the app's reader
    thread copied holding the interpreter lock: 165 ms of a frozen window for a 375 MB report. Large
    arrays and tensors now travel as buffers beside a small pickle, read straight into their own memory,
    and a snapshot of them is taken when the event is sent (the run goes on changing its weights)."""
    from engine.training import remote

    weights = torch.randn(300, 400)
    images = np.random.rand(50, 3, 32, 32).astype(np.float32)
    odd = {
        "bf16": torch.randn(200, 300).to(torch.bfloat16),
        "int": torch.arange(40_000, dtype=torch.int64).reshape(200, 200),
        "bool": torch.rand(300, 300) > 0.5,
        "transposed": torch.randn(300, 200).t(),  # (not contiguous)
        "conj": torch.randn(100, 100, dtype=torch.complex64).conj(),
        "small": torch.randn(3),
        "fortran": np.asfortranarray(np.random.rand(100, 90)),
        "strided": np.random.rand(200, 100)[::2],
    }
    event = (3, "report", {"weights": {"fc.weight": weights, "same": weights}, "images": images, "odd": odd})
    frame = remote.dumps(event)
    assert len(frame.pickle) < 4096 and len(frame.buffers) >= 6  # (everything large went beside it)
    weights.zero_()  # the run goes on: what was sent is what there was
    images[:] = 0
    stream = io.BytesIO()
    remote.write_frame(stream, frame)
    remote.write_frame(stream, pickle.dumps("next"))  # (a plain pickle is a frame too)
    stream.seek(0)
    rid, kind, got = remote.read_frame(stream)
    assert remote.read_frame(stream) == "next"
    assert got["weights"]["same"] is got["weights"]["fc.weight"]
    assert got["weights"]["fc.weight"].abs().sum() > 0 and got["images"].any()
    assert torch.equal(got["weights"]["fc.weight"], loads(frame)[2]["weights"]["fc.weight"])
    for key, value in odd.items():
        back = got["odd"][key]
        if isinstance(value, torch.Tensor):
            assert back.dtype == value.dtype and back.shape == value.shape and torch.equal(back, value.resolve_conj())
        else:
            assert back.dtype == value.dtype and np.array_equal(back, value)
    back = got["images"]
    back += 1  # (an array of its own, writable, as pickle gives)
    assert back.flags.writeable and got["weights"]["fc.weight"].add_(1) is not None


def test_a_run_in_the_process_reports_what_a_run_in_this_process_does(process, tmp_path):
    graph, config = digits_mlp(hidden=300)  # (weights of 75 KB: they travel beside the pickle)
    here = Events()
    TrainingJob(graph, config, here, run_dir=str(tmp_path / "here"), want_preview=lambda: ("hidden", 1)).run()
    there = Events()
    job = RemoteJob(graph, config, there, run_dir=str(tmp_path / "there"), want_preview=("hidden", 1),
                    process=process)
    job.start()
    job.start()  # (once)
    assert job.wait(TIMEOUT) and not job.alive
    assert process.info["pid"] != os.getpid() and process.info["torch"] == torch.__version__
    # the modules it imported before training are out of the garbage collector's sight (a full
    # collection walking them in a run took 140-190 ms)
    assert process.info["frozen_objects"] > 100_000
    # The same events (how many step, health and epoch events there are, and where samples fall
    # between them, depends on timing), beginning and ending alike, with the same figures.
    assert set(there.kinds()) == set(here.kinds())
    assert there.kinds()[:4] == here.kinds()[:4] == ["network", "phase", "phase", "start"]
    def tail(ev):
        return [k for k in ev.kinds() if k != "health"][-4:]
    assert tail(there) == tail(here) == ["result", "phase", "report", "done"]

    def epochs(ev):
        return [(e.epoch, e.step, round(e.train_loss, 5), e.dev_accuracy) for end in ev.of("epochs") for e in end.epochs]
    assert epochs(there) == epochs(here) and len(epochs(there)) == 2
    assert there.kinds()[-1] == "done" and "error" not in there.kinds()
    result = there.of("result")[0]
    assert result.status == "finished" and result.steps == here.of("result")[0].steps
    report = there.of("report")[0]
    for key, value in here.of("report")[0]["weights"].items():  # same seed, same data: the same weights
        torch.testing.assert_close(report["weights"][key], value)
    from engine.training.remote import OOB_MIN
    assert max(w.numel() * w.element_size() for w in report["weights"].values()) >= OOB_MIN
    assert report["report"] is not None and report["dataset"].name == "digits"
    # The data set's rows of the examples the report lists (the dev set), not the whole of it.
    rows, examples = report["dataset"], report["examples"]
    assert list(rows.index) == sorted(set(examples.indices.tolist())) and 0 < len(rows) < 1797 // 2
    assert all(np.array_equal(rows.example(int(i)), load_dataset("digits").x[int(i)]) for i in examples.indices[:5])
    node, index, epoch, pv, sample, error = there.of("preview")[0]
    assert (node, index, error) == ("hidden", 1, "") and pv.shape == (300,)
    assert (tmp_path / "there" / "final.pt").is_file()


def test_pause_resume_and_stop_are_messages_that_act_mid_epoch(process, tmp_path):
    graph, config = digits_mlp(epochs=20, batching="stochastic")
    ev = Events()
    job = RemoteJob(graph, config, ev, run_dir=str(tmp_path / "run"), process=process)
    job.start()
    ev.wait_for(lambda: any(s.step >= 20 for s in ev.of("step")))
    job.pause()
    ev.wait_for(lambda: ("paused" in [s for s, _ in ev.of("state")]))
    paused_at = next(step for s, step in ev.of("state") if s == "paused")
    assert max(s.step for s in ev.of("step")) == paused_at  # the curve reaches the step it paused after
    n = len(ev.items)
    time.sleep(0.5)
    assert len(ev.items) == n  # nothing moves while paused
    job.resume()
    ev.wait_for(lambda: max(s.step for s in ev.of("step")) > paused_at + 20)
    job.stop()
    assert job.wait(TIMEOUT)
    result = ev.of("result")[0]
    assert result.status == "stopped" and paused_at < result.steps
    assert (tmp_path / "run" / "final.pt").is_file()  # resumable


def test_a_run_reports_and_previews_at_the_pace_the_app_asks_mid_run(process, tmp_path):
    """The app draws less often while a CPU run trains on every core, and asks the run to report and
    compute its live preview as often as it draws: each step event costs the run its gradient norms."""
    graph, config = digits_mlp(epochs=40, batching="stochastic")
    ev = Events()
    job = RemoteJob(graph, config, ev, run_dir=str(tmp_path / "run"), want_preview=("hidden", 0), process=process)
    job.start()
    ev.wait_for(lambda: len(ev.of("step")) >= 3 and ev.of("preview"))
    job.pace(0.75, 1000.0)
    time.sleep(0.3)  # (the message's way there)
    paced_at = time.perf_counter()
    n_steps, n_previews, last_step = len(ev.of("step")), len(ev.of("preview")), ev.of("step")[-1].step
    ev.wait_for(lambda: time.perf_counter() - paced_at > 3.0 or ev.of("result"))
    seconds = time.perf_counter() - paced_at
    job.stop()
    assert job.wait(TIMEOUT)
    later = [s for s in ev.of("step") if s.step > last_step]
    assert later and len(ev.of("step")) - n_steps <= seconds / 0.75 + 2  # (+ the run's last, + one in flight)
    assert len(ev.of("preview")) == n_previews  # none due for 1000 s
    times = [s.elapsed for s in later[:-1]]
    assert all(b - a >= 0.74 for a, b in zip(times, times[1:]))


def test_a_run_stopped_before_it_starts_ends_as_a_stopped_run(process, tmp_path):
    graph, config = digits_mlp()
    ev = Events()
    job = RemoteJob(graph, config, ev, run_dir=str(tmp_path / "run"), process=process)
    job.stop()
    assert job.wait(TIMEOUT)
    assert ev.of("result")[0].status == "stopped" and ev.of("result")[0].steps <= 1  # (after its first step)


def test_a_graph_starts_from_the_weights_file_it_names_beside_its_file(process, tmp_path):
    """An imported graph names its weights relative to its own file: the process finds them there, from
    whatever folder the app runs in."""
    from engine.compiler import build
    from engine.fileio import load_graph, save_graph
    from engine.onnx_weights import save_node_weights, to_node_keys

    graph, config = digits_mlp(epochs=1)
    compiled = build(graph, seed=7)
    state, _ = to_node_keys(compiled.model.state_dict(), compiled.plan.attrs)
    save_node_weights(tmp_path / "mlp.safetensors", state, {})
    graph.weights = "mlp.safetensors"
    save_graph(graph, tmp_path / "mlp.dcnet")
    graph = load_graph(tmp_path / "mlp.dcnet")
    ev = Events()
    job = RemoteJob(graph, config, ev, process=process)
    job.start()
    assert job.wait(TIMEOUT) and "error" not in ev.kinds(), ev.of("error")
    here, fresh = Events(), Events()
    TrainingJob(graph, config, here).run()  # from the file's weights (seed 7), in this process
    graph.weights = None
    TrainingJob(graph, config, fresh).run()  # from the config's seed
    there = ev.of("report")[0]["weights"]
    for name, value in here.of("report")[0]["weights"].items():
        torch.testing.assert_close(there[name], value)
    assert not all(torch.equal(there[k], v) for k, v in fresh.of("report")[0]["weights"].items())


def test_bad_settings_come_back_as_the_engines_message(process, tmp_path):
    graph, config = digits_mlp()
    config = config.with_overrides({"data.dataset": str(tmp_path / "missing.csv")})
    ev = Events()
    job = RemoteJob(graph, config, ev, process=process)
    job.start()
    assert job.wait(TIMEOUT)
    assert ev.kinds()[-2:] == ["error", "done"]
    assert "missing.csv" in ev.of("error")[0]
    assert process.alive  # the next run goes to the same process


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
def test_a_process_that_dies_fails_its_run_with_why_and_the_next_run_gets_a_new_one(tmp_path, monkeypatch):
    proc = TrainingProcess()
    monkeypatch.setattr(TrainingProcess, "_shared", proc)
    graph, config = digits_mlp(epochs=200, batching="stochastic")
    ev = Events()
    job = RemoteJob(graph, config, ev, run_dir=str(tmp_path / "run"))  # the shared process
    job.start()
    ev.wait_for(lambda: bool(ev.of("step")))
    os.kill(proc.proc.pid, signal.SIGKILL)  # as the out-of-memory killer would
    assert job.wait(TIMEOUT)
    assert ev.kinds()[-2:] == ["error", "done"]
    text = ev.of("error")[0]
    assert "ended unexpectedly" in text and "signal 9" in text and "unchanged" in text
    assert not proc.alive
    fresh = TrainingProcess.shared()
    try:
        assert fresh is not proc and fresh.alive
        small, small_config = digits_mlp(epochs=1)
        ev2 = Events()
        job2 = RemoteJob(small, small_config, ev2)
        job2.start()
        assert job2.wait(TIMEOUT) and ev2.of("result")[0].status == "finished"
    finally:
        fresh.close()


@pytest.mark.skipif(not os.path.exists("/bin/false"), reason="needs /bin/false")
def test_a_process_that_cannot_start_fails_the_run_with_why(tmp_path, monkeypatch):
    graph, config = digits_mlp()
    broken = TrainingProcess(python="/bin/false")
    assert not broken.wait_ready(TIMEOUT)  # at once: it ended
    ev = Events()
    job = RemoteJob(graph, config, ev, process=broken)
    job.start()
    assert job.wait(TIMEOUT) and ev.kinds() == ["error", "done"]
    assert "ended unexpectedly (exit status 1)" in ev.of("error")[0]

    def no_python(cls):
        raise FileNotFoundError(2, "No such file or directory", "/no/python")
    monkeypatch.setattr(TrainingProcess, "shared", classmethod(no_python))
    ev = Events()
    job = RemoteJob(graph, config, ev)
    job.start()
    assert job.wait(1) and ev.kinds() == ["error", "done"]
    assert "could not start" in ev.of("error")[0] and "/no/python" in ev.of("error")[0]


def test_the_process_stops_its_run_and_exits_when_the_app_is_gone(tmp_path):
    proc = TrainingProcess()
    graph, config = digits_mlp(epochs=200, batching="stochastic")
    ev = Events()
    job = RemoteJob(graph, config, ev, run_dir=str(tmp_path / "run"), process=proc)
    job.start()
    ev.wait_for(lambda: bool(ev.of("step")))
    proc.proc.stdin.close()  # what the child sees when the app exits or crashes
    assert proc.proc.wait(TIMEOUT) == 0
    assert (tmp_path / "run" / "final.pt").is_file()  # stopped cleanly: the run can resume
    if sys.platform != "win32":
        assert ev.of("result") and ev.of("result")[0].status == "stopped"


def test_a_failing_subscriber_here_neither_ends_the_run_nor_the_process(process, tmp_path, capfd):
    """A bug in this process's handler of one event is reported (stderr, with its traceback); the run
    goes on to its result and ``wait`` still returns."""
    graph, config = digits_mlp(epochs=2)
    ev = Events()
    failed = []

    def put(kind, payload):
        if kind == "epochs" and not failed:
            failed.append(kind)
            raise RuntimeError("a handler's bug")
        ev(kind, payload)

    job = RemoteJob(graph, config, put, run_dir=str(tmp_path / "run"), process=process)
    job.start()
    assert job.wait(TIMEOUT)
    assert ev.of("result")[0].status == "finished" and ev.kinds()[-1] == "done"
    assert process.alive
    err = capfd.readouterr().err
    assert "a subscriber failed on the training process's 'epochs' event" in err and "a handler's bug" in err


def test_an_unreadable_event_ends_the_process_and_says_so_not_out_of_memory(tmp_path, monkeypatch):
    from engine.training import remote

    proc = TrainingProcess()
    try:
        assert proc.wait_ready(TIMEOUT)
        real = remote.read_frame

        def corrupt(stream):
            msg = real(stream)
            if msg[1] == "step":
                raise pickle_error
            return msg
        pickle_error = ValueError("a torn frame")
        monkeypatch.setattr(remote, "read_frame", corrupt)
        graph, config = digits_mlp(epochs=50)
        ev = Events()
        job = RemoteJob(graph, config, ev, run_dir=str(tmp_path / "run"), process=proc)
        job.start()
        assert job.wait(TIMEOUT)
        assert ev.kinds()[-2:] == ["error", "done"]
        text = ev.of("error")[0]
        assert "the app stopped it: an event from it could not be read (ValueError: a torn frame)" in text
        assert "signal" not in text and "out of memory" not in text
        assert not proc.alive
    finally:
        proc.close()
