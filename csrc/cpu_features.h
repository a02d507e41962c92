// cpu_features.h — runtime ISA detection and the capability cap.
//
// One binary runs on every x86-64: the AVX2/FMA and AVX-512 micro-kernels are compiled
// into their own translation units and chosen here, at run time, from what the CPU
// (and the OS, via XGETBV) supports. PYMINIDL_CPU_CAPABILITY=baseline|avx2|avx512 caps
// the choice; set_isa_cap() does the same from Python (tests force each path with it).
#pragma once

#include <cstdint>
#include <string>

namespace pyminidl {

enum class Isa : int { baseline = 0, avx2 = 1, avx512 = 2 };

struct CpuFeatures {
    bool sse42 = false, avx = false, avx2 = false, fma = false;
    bool avx512f = false, avx512dq = false, avx512bw = false, avx512vl = false;
};

// Data cache sizes in bytes: L1d and L2 of one core, L3 as one core sees it (the whole
// shared cache). 0 = not reported. source: "sysfs", "sysconf" or "none".
struct CacheSizes {
    int64_t l1d = 0, l2 = 0, l3 = 0;
    const char* source = "none";
};

const CpuFeatures& cpu_features();
const CacheSizes& cache_sizes();  // detected once, at first use
Isa best_supported_isa();        // what the hardware can run
Isa active_isa();                // min(best_supported_isa(), cap)
void set_isa_cap(Isa cap);       // cap above the hardware is clamped to it
const char* isa_name(Isa isa);
bool parse_isa(const std::string& name, Isa* out);  // false on an unknown name

}  // namespace pyminidl

// Inside a kernel entry point: return fn(...) from the widest per-ISA copy (namespaces avx512::,
// avx2::) that active_isa() allows; on the baseline path, or off x86, fall through to the code
// after it. The one dispatch rule of the families with per-ISA copies (activations, pool, norm).
#if defined(PYMINIDL_X86)
#define PMD_ISA_DISPATCH(fn, ...)                                               \
    switch (::pyminidl::active_isa()) {                                         \
        case ::pyminidl::Isa::avx512: return avx512::fn(__VA_ARGS__);           \
        case ::pyminidl::Isa::avx2: return avx2::fn(__VA_ARGS__);               \
        default: break;                                                         \
    }
#else
#define PMD_ISA_DISPATCH(fn, ...)
#endif
