// cpu_features.cpp — runtime CPU feature detection and the ISA cap.
// Uses GCC/Clang's __builtin_cpu_supports, which also checks that the OS saves the
// AVX/AVX-512 register state (XGETBV), so a reported feature is a usable one.
#include "cpu_features.h"

#include <atomic>
#include <cstdlib>

namespace pyminidl {

namespace {

CpuFeatures detect() {
    CpuFeatures f;
#if defined(PYMINIDL_X86) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    f.sse42 = __builtin_cpu_supports("sse4.2");
    f.avx = __builtin_cpu_supports("avx");
    f.avx2 = __builtin_cpu_supports("avx2");
    f.fma = __builtin_cpu_supports("fma");
    f.avx512f = __builtin_cpu_supports("avx512f");
    f.avx512dq = __builtin_cpu_supports("avx512dq");
    f.avx512bw = __builtin_cpu_supports("avx512bw");
    f.avx512vl = __builtin_cpu_supports("avx512vl");
#endif
    return f;
}

Isa cap_from_env() {
    const char* env = std::getenv("PYMINIDL_CPU_CAPABILITY");
    Isa cap = Isa::avx512;
    if (env != nullptr && *env != '\0' && !parse_isa(env, &cap)) {
        cap = Isa::baseline;  // an unreadable cap is taken as the safest path
    }
    return cap;
}

std::atomic<int>& cap_storage() {
    static std::atomic<int> cap{static_cast<int>(cap_from_env())};
    return cap;
}

}  // namespace

const CpuFeatures& cpu_features() {
    static const CpuFeatures features = detect();
    return features;
}

Isa best_supported_isa() {
    const CpuFeatures& f = cpu_features();
    if (f.avx512f && f.avx512dq && f.avx512bw && f.avx512vl && f.fma) return Isa::avx512;
    if (f.avx2 && f.fma) return Isa::avx2;
    return Isa::baseline;
}

Isa active_isa() {
    const int cap = cap_storage().load(std::memory_order_relaxed);
    const int best = static_cast<int>(best_supported_isa());
    return static_cast<Isa>(cap < best ? cap : best);
}

void set_isa_cap(Isa cap) { cap_storage().store(static_cast<int>(cap), std::memory_order_relaxed); }

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::avx512: return "avx512";
        case Isa::avx2: return "avx2";
        default: return "baseline";
    }
}

bool parse_isa(const std::string& name, Isa* out) {
    if (name == "baseline") { *out = Isa::baseline; return true; }
    if (name == "avx2") { *out = Isa::avx2; return true; }
    if (name == "avx512") { *out = Isa::avx512; return true; }
    return false;
}

}  // namespace pyminidl
