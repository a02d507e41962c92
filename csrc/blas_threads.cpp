// blas_threads.cpp — OpenBLAS's parallel jobs on the OpenMP team (blas_threads.h).
#include "blas_threads.h"

#include "common.h"
#include "team.h"

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#if defined(__linux__)
#include <dlfcn.h>
#include <link.h>
#endif

namespace pyminidl {
namespace {

// OpenBLAS's types (driver/others/blas_server*.c): a job is dojob(thread_num, job, data), the
// callback gets the jobs as an array of `numjobs` records of `job_size` bytes. OpenBLAS always
// passes sync = 1: the callback returns once every job has.
using BlasJob = void (*)(int thread_num, void* job, int data);
using BlasThreadsCallback = void (*)(int sync, BlasJob dojob, int numjobs, size_t job_size, void* jobs, int data);
using SetCallback = void (*)(BlasThreadsCallback);

// The setter's names: OpenBLAS's own, with the 64-bit-integer suffix, and the scipy-openblas
// builds NumPy's and SciPy's wheels ship (prefix scipy_).
constexpr const char* SETTER_NAMES[] = {
    "openblas_set_threads_callback_function",
    "openblas_set_threads_callback_function64_",
    "scipy_openblas_set_threads_callback_function",
    "scipy_openblas_set_threads_callback_function64_",
};

struct SharedLibrary {
    std::string path;
    SetCallback set;
    void* handle;  // dlopen's, held while the library holds the callback
};

std::mutex libraries_lock;
std::vector<SharedLibrary> shared_libraries;  // those handed over now
std::atomic<int64_t> calls_run{0};

// Jobs [first, numjobs) each on a thread of its own, job `mine` on this one; returns when all have.
template <typename Run>
void run_on_own_threads(int first, int numjobs, int mine, const Run& run) {
    std::vector<std::thread> extra;
    extra.reserve(static_cast<size_t>(numjobs - first));
    for (int i = first; i < numjobs; ++i) extra.emplace_back(run, i);
    if (mine >= 0) run(mine);
    for (std::thread& t : extra) t.join();
}

// Every job on its own thread at once: a team of numjobs, the calling thread job 0. Where the
// team comes out smaller (a call from inside another region, where a nested team gets one
// thread, or a thread limit), the jobs past it get threads of their own, since a job that ran
// after another one it waits for would wait forever.
template <typename Run>
void run_all_at_once(int numjobs, const Run& run) {
#if defined(PYMINIDL_OPENMP)
    TeamRegion region;
#pragma omp parallel num_threads(numjobs)
    {
        region.arrive();
        const int t = omp_get_thread_num(), team = omp_get_num_threads();
        if (t == 0 && team < numjobs) {
            run_on_own_threads(team, numjobs, 0, run);
        } else {
            run(t);
        }
    }
    region.end();
#else
    run_on_own_threads(1, numjobs, 0, run);
#endif
}

void run_blas_jobs(int /*sync*/, BlasJob dojob, int numjobs, size_t job_size, void* jobs, int data) {
    char* base = static_cast<char*>(jobs);
    const auto run = [=](int i) { dojob(i, base + static_cast<size_t>(i) * job_size, data); };
    if (numjobs <= 1) {
        if (numjobs == 1) run(0);
        return;
    }
    calls_run.fetch_add(1, std::memory_order_relaxed);
    run_all_at_once(numjobs, run);
}

#if defined(__linux__)
// The file of each loaded library whose name says OpenBLAS.
int collect_openblas(struct dl_phdr_info* info, size_t, void* out) {
    const char* path = info->dlpi_name;
    if (path != nullptr && std::strstr(path, "openblas") != nullptr) {
        static_cast<std::vector<std::string>*>(out)->push_back(path);
    }
    return 0;
}
#endif

// The loaded OpenBLAS libraries that have a threads-callback setter. RTLD_NOLOAD: only a library
// already loaded; the handle of one with a setter is kept (share_blas_threads closes it when it
// gives the library its threads back), so the library stays loaded while it holds the callback.
std::vector<SharedLibrary> loaded_openblas() {
    std::vector<SharedLibrary> found;
#if defined(__linux__)
    std::vector<std::string> files;
    dl_iterate_phdr(&collect_openblas, &files);
    for (const std::string& path : files) {
        void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD);
        if (handle == nullptr) continue;
        SetCallback set = nullptr;
        for (const char* name : SETTER_NAMES) {
            if (void* symbol = dlsym(handle, name)) {
                set = reinterpret_cast<SetCallback>(symbol);
                break;
            }
        }
        if (set != nullptr) {
            found.push_back({path, set, handle});
        } else {
            dlclose(handle);
        }
    }
#endif
    return found;
}

std::vector<std::string> paths(const std::vector<SharedLibrary>& libraries) {
    std::vector<std::string> out;
    for (const SharedLibrary& lib : libraries) out.push_back(lib.path);
    return out;
}

}  // namespace

std::vector<std::string> share_blas_threads(bool on) {
    std::lock_guard<std::mutex> hold(libraries_lock);
    for (const SharedLibrary& lib : shared_libraries) {
        lib.set(nullptr);
#if defined(__linux__)
        dlclose(lib.handle);
#endif
    }
    shared_libraries.clear();
    if (on && openmp_enabled()) {
        shared_libraries = loaded_openblas();
        for (const SharedLibrary& lib : shared_libraries) lib.set(&run_blas_jobs);
    }
    return paths(shared_libraries);
}

std::vector<std::string> blas_threads_shared() {
    std::lock_guard<std::mutex> hold(libraries_lock);
    return paths(shared_libraries);
}

int64_t blas_calls_run() { return calls_run.load(std::memory_order_relaxed); }

void unshare_blas_threads_in_child() {
    // The child has one thread (the one that forked), so no lock is held by another.
    for (const SharedLibrary& lib : shared_libraries) lib.set(nullptr);
    shared_libraries.clear();
}

namespace {

struct ProbeJobs {
    int jobs;
    std::atomic<int> started{0};
    std::atomic<bool> all_met{true};
};

void probe_job(int, void* job, int) {
    ProbeJobs* p = *static_cast<ProbeJobs**>(job);
    p->started.fetch_add(1);
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (p->started.load() < p->jobs) {
        if (std::chrono::steady_clock::now() > give_up) {
            p->all_met = false;
            return;
        }
        std::this_thread::yield();
    }
}

}  // namespace

bool blas_jobs_probe(int jobs, bool inside_region) {
    ProbeJobs probe;
    probe.jobs = jobs;
    std::vector<ProbeJobs*> records(static_cast<size_t>(jobs), &probe);
    const auto call = [&] { run_blas_jobs(1, &probe_job, jobs, sizeof(ProbeJobs*), records.data(), 0); };
#if defined(PYMINIDL_OPENMP)
    if (inside_region) {
#pragma omp parallel num_threads(2)
        {
            if (omp_get_thread_num() == 0) call();
        }
        return probe.all_met && probe.started == jobs;
    }
#endif
    (void)inside_region;
    call();
    return probe.all_met && probe.started == jobs;
}

}  // namespace pyminidl
