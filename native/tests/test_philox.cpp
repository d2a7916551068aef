// Host test of native/src/philox.cuh (the Philox4x32-10 generator the CUDA kernels use), plain C++17:
//  1. Random123's published known-answer vectors for philox4x32_10;
//  2. the golden table philox_golden.inc written from Java (org.diffusion4j.random.PhiloxGolden): equal bits
//     here and in PhiloxGoldenTest prove that the GPU math and the Java CPU math agree bitwise;
//  3. internal consistency (element i = lane i&3 of block i>>2; normal4/uniform4 vs the single forms);
//  4. the u1 extremes: finite largest |z|, positive smallest R, no Inf/NaN over a sweep of words.
// Exit status 0 when every check passes; prints "N passed, M failed".
#include "philox.cuh"

#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>

namespace {

int g_passed = 0;
int g_failed = 0;

void check(bool ok, const char *what) {
    if (ok) {
        ++g_passed;
    } else {
        ++g_failed;
        std::printf("FAILED: %s\n", what);
    }
}

uint32_t bits_of(float x) {
    uint32_t u;
    std::memcpy(&u, &x, sizeof u);
    return u;
}

// Random123 tests/kat_vectors (github.com/DEShawResearch/random123), the three "philox4x32 10" lines:
// counter[4] key[2] -> expected[4].
struct Kat {
    uint32_t ctr[4];
    uint32_t key[2];
    uint32_t expected[4];
};

const Kat kKat[] = {
    {{0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u}, {0x00000000u, 0x00000000u},
     {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
    {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu},
     {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
    {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u},
     {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
};

void test_known_answers() {
    for (const Kat &k : kKat) {
        d4j::PhiloxWords w = d4j::philox4x32_10(k.ctr[0], k.ctr[1], k.ctr[2], k.ctr[3], k.key[0], k.key[1]);
        bool ok = true;
        for (int i = 0; i < 4; ++i) {
            ok = ok && w.r[i] == k.expected[i];
        }
        if (!ok) {
            std::printf("kat ctr %08x..: got %08x %08x %08x %08x\n", k.ctr[0], w.r[0], w.r[1], w.r[2], w.r[3]);
        }
        check(ok, "philox4x32_10 known-answer vector (Random123 kat_vectors)");
    }
    // The contract's mapping: seed = key, (j, stream) = counter. Block 0 of seed 0, stream 0 is the zero KAT.
    d4j::PhiloxWords z = d4j::philox_block(0, 0, 0);
    check(z.r[0] == 0x6627e8d5u && z.r[3] == 0x9b00dbd8u, "philox_block(0, 0, 0) = zero-counter KAT");
    // All-ones key and counter: seed = stream = j = 2^64 - 1.
    d4j::PhiloxWords o = d4j::philox_block(~0ull, ~0ull, ~0ull);
    check(o.r[0] == 0x408f276du && o.r[3] == 0x6d5451fdu, "philox_block(~0, ~0, ~0) = all-ones KAT");
}

struct Golden {
    char kind;
    uint64_t seed;
    uint64_t stream;
    uint64_t index;
    uint32_t bits;
};

#define D4J_GOLDEN(kind, seed, stream, index, bits) {kind, seed, stream, index, bits},
const Golden kGolden[] = {
#include "philox_golden.inc"
};
#undef D4J_GOLDEN

uint32_t compute(const Golden &g) {
    uint32_t w = static_cast<uint32_t>(g.index);
    switch (g.kind) {
        case 'W': return d4j::philox_block(g.seed, g.stream, g.index >> 2).r[g.index & 3];
        case 'U': return bits_of(d4j::philox_uniform(g.seed, g.stream, g.index));
        case 'N': return bits_of(d4j::philox_normal(g.seed, g.stream, g.index));
        case 'R': return bits_of(d4j::box_muller_radius(w));
        case 'C': return bits_of(d4j::cos_turns(w));
        case 'S': return bits_of(d4j::sin_turns(w));
        case 'L': {
            float u;
            std::memcpy(&u, &w, sizeof u);
            return bits_of(d4j::log_pos(u));
        }
        default: return 0xdeadbeefu;
    }
}

void test_golden() {
    const int n = static_cast<int>(sizeof kGolden / sizeof kGolden[0]);
    int bad = 0;
    for (int r = 0; r < n; ++r) {
        const Golden &g = kGolden[r];
        uint32_t got = compute(g);
        if (got != g.bits) {
            if (++bad <= 10) {
                std::printf("golden row %d '%c' seed %016" PRIx64 " stream %016" PRIx64 " index %016" PRIx64
                            ": expected %08x, got %08x\n",
                            r, g.kind, g.seed, g.stream, g.index, g.bits, got);
            }
        }
    }
    std::printf("golden table: %d rows, %d mismatches\n", n, bad);
    check(n > 500, "golden table has its rows");
    check(bad == 0, "every golden row matches Java bit for bit");
}

void test_consistency() {
    const uint64_t seed = 0x0123456789abcdefull;
    const uint64_t stream = 99;
    bool ok = true;
    for (uint64_t j = 0; j < 64; ++j) {
        float z[4];
        float u[4];
        d4j::philox_normal4(seed, stream, j, z);
        d4j::philox_uniform4(seed, stream, j, u);
        d4j::PhiloxWords w = d4j::philox_block(seed, stream, j);
        for (int lane = 0; lane < 4; ++lane) {
            uint64_t i = 4 * j + static_cast<uint64_t>(lane);
            ok = ok && bits_of(z[lane]) == bits_of(d4j::philox_normal(seed, stream, i));
            ok = ok && bits_of(u[lane]) == bits_of(d4j::philox_uniform(seed, stream, i));
            ok = ok && bits_of(u[lane]) == bits_of(d4j::uniform_of(w.r[lane]));
        }
        float a;
        float b;
        d4j::normal_pair(w.r[0], w.r[1], &a, &b);
        ok = ok && bits_of(a) == bits_of(z[0]) && bits_of(b) == bits_of(z[1]);
    }
    check(ok, "normal4/uniform4 equal the single-element forms lane by lane");
}

void test_extremes() {
    // uniform: r = 0 -> 2^-24, r = 2^32 - 1 -> 1 exactly
    check(d4j::uniform_of(0u) == 0x1p-24f, "uniform_of(0) = 2^-24");
    check(d4j::uniform_of(0xffffffffu) == 1.0f, "uniform_of(0xffffffff) = 1");
    // Box-Muller u1: a in {0, 1} -> 2^-32 (largest R = sqrt(64 ln 2)); a = 2^32 - 1 -> 1 - 2^-24
    check(d4j::box_muller_u1(0u) == 0x1p-32f, "u1(0) = 2^-32");
    check(d4j::box_muller_u1(0xffffffffu) == 1.0f - 0x1p-24f, "u1(0xffffffff) = 1 - 2^-24");
    const double r_max = std::sqrt(64.0 * std::log(2.0));
    check(std::fabs(d4j::box_muller_radius(0u) - r_max) < 1e-6, "R(0) = sqrt(64 ln 2)");
    check(d4j::box_muller_radius(0xffffffffu) > 3.4e-4f, "R(0xffffffff) > 0");
    // a sweep of words: every radius finite, within [3.45e-4, 6.6605]; every z finite
    bool finite = true;
    float r_lo = 1e30f;
    float r_hi = 0.0f;
    for (uint64_t a = 0; a < (1ull << 32); a += 65537) {
        float r = d4j::box_muller_radius(static_cast<uint32_t>(a));
        finite = finite && std::isfinite(r);
        r_lo = r < r_lo ? r : r_lo;
        r_hi = r > r_hi ? r : r_hi;
        float z0;
        float z1;
        d4j::normal_pair(static_cast<uint32_t>(a), static_cast<uint32_t>(a * 2654435761u), &z0, &z1);
        finite = finite && std::isfinite(z0) && std::isfinite(z1);
    }
    check(finite, "radius and normals finite over a sweep of words");
    check(r_lo > 3.4e-4f && r_hi < 6.6605f, "radius within [3.45e-4, 6.6605]");
    // sin^2 + cos^2 = 1 to float accuracy at quadrant boundaries
    bool unit = true;
    for (uint32_t k : {0u, 1u, 0x1fffffu, 0x200000u, 0x3fffffu, 0x400000u, 0x800000u, 0xc00000u, 0xffffffu}) {
        float c = d4j::cos_turns(k << 8);
        float s = d4j::sin_turns(k << 8);
        unit = unit && std::fabs(static_cast<double>(c) * c + static_cast<double>(s) * s - 1.0) < 3e-7;
    }
    check(unit, "cos^2 + sin^2 = 1 at quadrant boundaries");
    check(d4j::cos_turns(0u) == 1.0f && d4j::sin_turns(0u) == 0.0f, "angle 0: cos 1, sin 0");
    check(d4j::cos_turns(0x800000u << 8) == -1.0f && d4j::sin_turns(0x400000u << 8) == 1.0f, "half turn: cos -1; quarter turn: sin 1");
}

}  // namespace

int main() {
    test_known_answers();
    test_golden();
    test_consistency();
    test_extremes();
    std::printf("test_philox: %d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
