// cpu_features.cpp — runtime CPU feature detection and the ISA cap.
// Uses GCC/Clang's __builtin_cpu_supports, which also checks that the OS saves the
// AVX/AVX-512 register state (XGETBV), so a reported feature is a usable one.
#include "cpu_features.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

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

// "32K" / "1024K" / "32M" (sysfs's spelling) -> bytes; 0 when unreadable.
int64_t parse_size(const char* s) {
    char* end = nullptr;
    const long long v = std::strtoll(s, &end, 10);
    if (end == s || v <= 0) return 0;
    if (*end == 'K' || *end == 'k') return v * 1024;
    if (*end == 'M' || *end == 'm') return v * 1024 * 1024;
    return v;
}

// The first line of a small text file, or "" when it cannot be read.
std::string read_line(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "r");
    if (f == nullptr) return "";
    char buf[64] = {};
    const bool ok = std::fgets(buf, sizeof buf, f) != nullptr;
    std::fclose(f);
    if (!ok) return "";
    buf[std::strcspn(buf, "\n")] = '\0';
    return buf;
}

// Linux: /sys/devices/system/cpu/cpu0/cache/index*/{level,type,size} (what the kernel read
// from the CPUID cache leaves, 4 on Intel and 0x8000001D on AMD).
bool caches_from_sysfs(CacheSizes* c) {
    for (int i = 0; i < 8; ++i) {
        const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
        const std::string level = read_line(dir + "level"), type = read_line(dir + "type");
        if (level.empty()) break;
        const int64_t size = parse_size(read_line(dir + "size").c_str());
        if (type == "Instruction") continue;
        if (level == "1") c->l1d = size;
        if (level == "2") c->l2 = size;
        if (level == "3") c->l3 = size;
    }
    return c->l1d > 0 || c->l2 > 0;
}

CacheSizes detect_caches() {
    CacheSizes c;
    if (caches_from_sysfs(&c)) {
        c.source = "sysfs";
        return c;
    }
#if defined(_SC_LEVEL1_DCACHE_SIZE) && defined(_SC_LEVEL2_CACHE_SIZE) && defined(_SC_LEVEL3_CACHE_SIZE)
    c.l1d = std::max<long>(0, sysconf(_SC_LEVEL1_DCACHE_SIZE));  // glibc: from CPUID
    c.l2 = std::max<long>(0, sysconf(_SC_LEVEL2_CACHE_SIZE));
    c.l3 = std::max<long>(0, sysconf(_SC_LEVEL3_CACHE_SIZE));
    if (c.l1d > 0 || c.l2 > 0) {
        c.source = "sysconf";
        return c;
    }
#endif
    return CacheSizes{};
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

const CacheSizes& cache_sizes() {
    static const CacheSizes caches = detect_caches();
    return caches;
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
