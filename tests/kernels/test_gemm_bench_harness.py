"""The benchmarks' worker-per-thread-count driver (benchmarks/_harness.run_main), which
bench_gemm and bench_conv share: options reach every worker, each worker runs with its own
thread count, and a pinned OpenBLAS core type is in place before NumPy loads."""

import json
import os
import platform
import subprocess
import sys
import textwrap

import pytest

BENCH_DIR = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "benchmarks")

# A benchmark on the driver whose worker reports what it was given and what its environment
# holds once setup_threads ran (and, with --load-numpy, which kernel OpenBLAS chose).
SCRIPT = textwrap.dedent('''
    """A benchmark that reports its workers' options."""
    import json
    import os
    import sys

    sys.path.insert(0, {bench_dir!r})
    import _harness


    def worker(threads, options):
        removed = _harness.setup_threads(threads, options.openblas_coretype)
        record = {{"op": "meta", "threads": threads, "quick": options.quick, "removed": sorted(removed),
                   "coretype": os.environ.get("OPENBLAS_CORETYPE"), "omp": os.environ["OMP_NUM_THREADS"]}}
        if options.load_numpy:
            record["blas"] = _harness.blas_info()
        _harness.emit(record)


    def report(records):
        print("REPORT " + json.dumps(records))


    def add_arguments(ap):
        ap.add_argument("--openblas-coretype")
        ap.add_argument("--load-numpy", action="store_true")


    if __name__ == "__main__":
        _harness.run_main(__doc__, __file__, worker, report, add_arguments)
''')


def _run(tmp_path, *args, env_extra=None):
    script = tmp_path / "bench_probe.py"
    script.write_text(SCRIPT.format(bench_dir=os.path.abspath(BENCH_DIR)))
    env = dict(os.environ, **(env_extra or {}))
    out = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, env=env,
                         check=True, timeout=120)
    line = next(line for line in out.stdout.splitlines() if line.startswith("REPORT "))
    return json.loads(line[len("REPORT "):])


def test_every_thread_count_runs_in_its_own_worker_with_the_options(tmp_path):
    out = tmp_path / "records.jsonl"
    records = _run(tmp_path, "--threads", "1", "--threads", "2", "--quick", "--openblas-coretype", "Haswell",
                   "--json", str(out))
    assert [(r["threads"], r["omp"]) for r in records] == [(1, "1"), (2, "2")]
    assert all(r["quick"] and r["coretype"] == "Haswell" for r in records)
    assert [json.loads(line) for line in out.read_text().splitlines()] == records


def test_a_left_over_core_type_is_unset_unless_asked_for(tmp_path):
    records = _run(tmp_path, "--threads", "1", env_extra={"OPENBLAS_CORETYPE": "Prescott"})
    assert records[0]["removed"] == ["OPENBLAS_CORETYPE"] and records[0]["coretype"] is None
    assert records[0]["quick"] is False


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="Haswell is an x86-64 core type")
def test_the_pinned_core_type_is_the_kernel_openblas_runs(tmp_path):
    records = _run(tmp_path, "--threads", "1", "--openblas-coretype", "Haswell", "--load-numpy")
    blas = records[0]["blas"]
    if blas.get("blas") != "openblas" or not blas.get("kernel"):
        pytest.skip(f"NumPy's BLAS is not an OpenBLAS that names its kernel: {blas}")
    assert blas["kernel"].lower() == "haswell"


def _harness_module():
    sys.path.insert(0, os.path.abspath(BENCH_DIR))
    try:
        import _harness
    finally:
        sys.path.pop(0)
    return _harness


# The blocks mode calls each peer once more before its timed block, to wake its threads.
@pytest.mark.parametrize("interleave, order", [(True, "ABABAB"), (False, "AAAABBBB")])
def test_interleave_times_the_peers_rep_by_rep_and_blocks_do_not(interleave, order):
    calls = []
    fns = {"A": lambda: calls.append("A"), "B": lambda: calls.append("B")}
    timing = _harness_module().bench(fns, reps=3, warmup=0, rounds=1, settle_s=0.0, interleave=interleave)
    assert "".join(calls) == order
    assert set(timing) == {"A", "B"} and all(len(t) == 3 for t in timing.values())


# A block whose threads waited for a core is contended: counted per peer, and run again (redo)
# with its times replaced; CpuWait is replaced by one that reports a chosen share per block.
def test_a_contended_block_is_counted_and_run_again(monkeypatch):
    harness = _harness_module()
    shares = iter([0.5, 0.0, 0.0, 0.5, 0.5, 0.0])  # A busy, again quiet; B quiet; A busy twice (kept); B
    monkeypatch.setattr(harness.CpuWait, "start", lambda self: None)
    monkeypatch.setattr(harness.CpuWait, "share", lambda self: next(shares))
    calls = []
    fns = {"A": lambda: calls.append("A"), "B": lambda: calls.append("B")}
    contention = {}
    harness.bench(fns, reps=4, warmup=0, rounds=2, settle_s=0.0, contention=contention, redo=1)
    # per block: 1 waking call + 2 timed; A's first block ran twice, the second round's B is quiet
    assert "".join(calls) == "AAA" * 2 + "BBB" + "AAA" * 2 + "BBB"
    assert contention == {"A": 0.5, "B": 0.0}
    with pytest.raises(StopIteration):  # every block measured, none more
        next(shares)


def test_cpu_wait_reads_this_process_threads_without_error():
    wait = _harness_module().CpuWait(threads=1)
    wait.start()
    share = wait.share()
    assert share >= 0.0


def test_busy_cell_names_ours_and_the_most_contended_peer():
    harness = _harness_module()
    records = {"pyminidl": {"contended": 0.0}, "torch": {"contended": 0.5}, "tf": {"contended": 1.0}}
    assert harness.busy(records) == "0%/100%"
    assert harness.busy({"pyminidl": {}, "torch": {"contended": 0.5}}) == "-"


# A peer that answers each request through _harness.serve (as the Keras-on-TensorFlow peers do),
# and stops with exit code 3 when asked to.
PEER = textwrap.dedent('''
    import sys

    sys.path.insert(0, {bench_dir!r})
    import _harness


    def handle(req):
        if req["cmd"] == "stop":
            sys.exit(3)
        return {{"twice": req["x"] * 2, "argv": sys.argv[1:]}}


    _harness.serve(handle)
''')


def _peer(tmp_path):
    sys.path.insert(0, BENCH_DIR)
    try:
        import _harness
    finally:
        sys.path.remove(BENCH_DIR)
    script = tmp_path / "peer.py"
    script.write_text(PEER.format(bench_dir=os.path.abspath(BENCH_DIR)))
    return _harness.PeerProcess(sys.executable, str(script), ["--flag", "1"], {"PEER_TEST": "1"})


def test_peer_process_answers_requests_in_order(tmp_path):
    peer = _peer(tmp_path)
    try:
        assert peer.ask(cmd="double", x=3) == {"ok": True, "twice": 6, "argv": ["--flag", "1"]}
        assert peer.ask(cmd="double", x=[1]) == {"ok": True, "twice": [1, 1], "argv": ["--flag", "1"]}
    finally:
        peer.close()
    assert peer.proc.returncode == 0


def test_peer_process_that_stops_names_its_exit_code(tmp_path):
    peer = _peer(tmp_path)
    with pytest.raises(RuntimeError, match=r"peer process stopped \(exit code 3\)"):
        peer.ask(cmd="stop")
