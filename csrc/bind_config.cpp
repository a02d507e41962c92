// bind_config.cpp — build facts, CPU features and ISA cap, threads (and what a fork() child gets), allocator tuning.
#include "bind_common.h"

#include <cstdlib>
#include <thread>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if !defined(_WIN32)
#include <pthread.h>
#endif

#include "blas_threads.h"
#include "cpu_features.h"
#include "team.h"

using namespace pyminidl;

namespace pyminidl::bind {
namespace {

// Called by the cpu backend unless PYMINIDL_TUNE_MALLOC=0 (cpu_backend.py says why): a fixed
// 32 MB mmap threshold and 64 MB of freed heap kept for reuse, so MB-sized per-step temporaries
// neither go back to mmap/munmap nor are trimmed off the heap and faulted in again. A user's own
// MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ settings are left alone.
bool tune_allocator() {
#if defined(__GLIBC__)
    if (std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr || std::getenv("MALLOC_TRIM_THRESHOLD_") != nullptr) {
        return false;
    }
    return mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 64 << 20) == 1;
#else
    return false;
#endif
}

// libgomp's thread pool does not survive fork(): a child that starts a team of more than
// one thread waits forever for the parent's workers, and no call re-creates them (setting
// 1 and then 2 threads in the child hangs as well). The child of any fork therefore runs
// every kernel on its own thread, as PyTorch's children do; a request for more threads
// there is refused with this reason. NumPy's OpenBLAS gets its own threads back there
// (blas_threads.h), which it starts again after a fork.
bool g_forked_child = false;

void on_fork_child() {
    g_forked_child = true;
    omp_set_threads(1);
    unshare_blas_threads_in_child();
}

void register_fork_handler() {
#if defined(PYMINIDL_OPENMP) && !defined(_WIN32)
    pthread_atfork(nullptr, nullptr, &on_fork_child);
#endif
}

py::dict team_state_dict() {
    const TeamState t = team_state();
    py::dict d;
    d["free"] = t.free;
    d["rule_on"] = t.rule_on;
    d["regions_timed"] = t.timed;
    d["regions_late"] = t.late;
    d["last_arrival_us"] = static_cast<double>(t.last_arrival_ns) / 1e3;
    d["contended_for_us"] = static_cast<double>(t.backoff_ns) / 1e3;
    return d;
}

}  // namespace

void bind_config(py::module_& m) {
    register_fork_handler();
    m.def("tune_allocator", &tune_allocator,
          "Keep glibc from mmap/munmap-ing every per-step temporary; False where not applied.");
    m.def("build_info", []() {
        py::dict info;
        info["openmp"] = openmp_enabled();
        info["max_threads"] = omp_max_threads();
        info["compiler"] = PYMINIDL_COMPILER;
        info["flags"] = PYMINIDL_FLAGS;
        info["isa"] = isa_name(active_isa());
        info["team_spin_window_us"] = static_cast<double>(team_spin_window_ns()) / 1e3;
        return info;
    }, "Build facts for bug reports: OpenMP, threads, compiler, flags, active ISA, and how long after "
       "a parallel region its workers count as awake (team_spin_window_us).");
    m.def("team_state", &team_state_dict, "The OpenMP team's state (team.h): free (False while a recent region's workers came late and "
       "kernels run on one thread), rule_on (PYMINIDL_SERIAL_WHEN_CONTENDED=1), regions timed and late, the last region's worker arrival after its "
       "fork, and how long the present contended period lasts (0 once a region came on time).");
    m.def("team_judge_region", [](double late_us, double span_us, bool awake) {
        const double most = 1e12;  // ~11.6 days: past it the ns counts could overflow
        if (!(late_us >= 0.0 && late_us <= most) || !(span_us >= late_us && span_us <= most)) {
            value_error("team_judge_region", "expected 0 <= late_us <= span_us <= 1e12. Received: late_us=" +
                                                 std::to_string(late_us) + ", span_us=" + std::to_string(span_us));
        }
        judge_region(static_cast<int64_t>(late_us * 1e3), static_cast<int64_t>(span_us * 1e3), awake);
        return team_state_dict();
    }, py::arg("late_us"), py::arg("span_us"), py::arg("awake") = true,
       "Judge a region as if its last worker arrived late_us after the fork, it took span_us and "
       "its workers were awake (spinning) at the fork (a test seam of team_state); returns team_state().");
    m.def("share_blas_threads", [](bool on) { return share_blas_threads(on); }, py::arg("on"),
          "Run the threaded calls of every loaded OpenBLAS that takes a threads callback (NumPy's) on "
          "pyminidl's OpenMP team (on), or give them their own threads back (off); returns the "
          "libraries' files (blas_threads.h).");
    m.def("blas_threads_state", []() {
        py::dict d;
        d["shared"] = blas_threads_shared();
        d["calls_run"] = blas_calls_run();
        return d;
    }, "The OpenBLAS libraries whose threaded calls run on pyminidl's team, and how many such calls ran.");
    m.def("blas_jobs_probe", [](int jobs, bool inside_region) {
        if (jobs < 1 || jobs > 64) {
            value_error("blas_jobs_probe", "expected 1 <= jobs <= 64. Received: jobs=" + std::to_string(jobs));
        }
        py::gil_scoped_release no_gil;
        return blas_jobs_probe(jobs, inside_region);
    }, py::arg("jobs"), py::arg("inside_region") = false,
       "Run `jobs` stand-in OpenBLAS jobs that wait for each other through the threads callback, "
       "from this thread or from inside a 2-thread region; True when all ran at once (a test seam).");
    m.def("cpu_features", []() {
        const CpuFeatures& f = cpu_features();
        py::dict d;
        d["sse4_2"] = f.sse42; d["avx"] = f.avx; d["avx2"] = f.avx2; d["fma"] = f.fma;
        d["avx512f"] = f.avx512f; d["avx512dq"] = f.avx512dq;
        d["avx512bw"] = f.avx512bw; d["avx512vl"] = f.avx512vl;
        d["best"] = isa_name(best_supported_isa());
        d["active"] = isa_name(active_isa());
        return d;
    }, "The CPU's features, the best ISA path it supports and the path in use.");
    m.def("set_cpu_capability", [](const std::string& name) {
        Isa isa;
        if (!parse_isa(name, &isa)) {
            value_error("set_cpu_capability", "expected one of 'baseline', 'avx2', 'avx512'. "
                        "Received: '" + name + "'");
        }
        set_isa_cap(isa);
        return std::string(isa_name(active_isa()));
    }, py::arg("name"), "Cap the ISA path; returns the path now in use.");
    m.def("get_num_threads", []() { return omp_max_threads(); });
    m.def("set_num_threads", [](int n) {
        if (n < 1) value_error("set_num_threads", "n must be >= 1. Received: " + std::to_string(n));
        // OpenMP aborts the process when it cannot create a team that large.
        const int limit = max_threads_allowed();
        if (n > limit) {
            value_error("set_num_threads", "n must be <= " + std::to_string(limit) +
                                               " (4 x the hardware threads, at least 64). Received: " + std::to_string(n));
        }
        if (g_forked_child && n > 1) {
            value_error("set_num_threads", "this process is a fork() child, where OpenMP cannot start "
                        "threads (its pool stayed in the parent), so kernels run on 1 thread; use the "
                        "'spawn' or 'forkserver' start method for parallel workers. Received: n=" + std::to_string(n));
        }
        omp_set_threads(n);
    }, py::arg("n"));
}

}  // namespace pyminidl::bind
