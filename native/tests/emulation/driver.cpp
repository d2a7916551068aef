// Driver of native/tests/emulation/run.sh: the emulated kernels against float64 references (attention forward F32
// and BF16, backward F32, column sum, LayerNorm backward, embedding backward); prints one line per check.
#include "emu.h"
#include <random>
static std::mt19937_64 rng(42);
static std::vector<float> rnd(size_t n, double lo, double hi) { std::uniform_real_distribution<double> u(lo, hi); std::vector<float> v(n); for (auto &x : v) x = (float)u(rng); return v; }
static float bfr(float f) { return bf2f(__float2bfloat16_rn(f).bits); }
static double relerr(const std::vector<float> &g, const std::vector<double> &r) { double n = 0, d = 0; for (size_t i = 0; i < g.size(); ++i) { if (std::isnan(g[i])) return INFINITY; n += (g[i] - r[i]) * (g[i] - r[i]); d += r[i] * r[i]; } return d == 0 ? std::sqrt(n) : std::sqrt(n / d); }
static int fails = 0;
static void expect(const char *what, double err, double tol) { bool ok = err <= tol; if (!ok) ++fails; std::printf("%s %-40s err %.3e (tol %.0e)\n", ok ? "ok  " : "FAIL", what, err, tol); }

struct Ref { std::vector<double> out, lse, dq, dk, dv; };
static Ref reference(const std::vector<float> &q, const std::vector<float> &k, const std::vector<float> &v, const std::vector<float> &dout, int bh, int tq, int tk, int dh, float scale) {
    Ref r; r.out.assign((size_t)bh * tq * dh, 0); r.lse.assign((size_t)bh * tq, 0); r.dq.assign(r.out.size(), 0); r.dk.assign((size_t)bh * tk * dh, 0); r.dv.assign(r.dk.size(), 0);
    for (int b = 0; b < bh; ++b) for (int i = 0; i < tq; ++i) {
        std::vector<double> s(tk); double m = -INFINITY;
        for (int j = 0; j < tk; ++j) { double a = 0; for (int d = 0; d < dh; ++d) a += (double)q[((size_t)b * tq + i) * dh + d] * k[((size_t)b * tk + j) * dh + d]; s[j] = scale * a; m = std::max(m, s[j]); }
        double l = 0; for (int j = 0; j < tk; ++j) { s[j] = std::exp(s[j] - m); l += s[j]; }
        r.lse[(size_t)b * tq + i] = m + std::log(l);
        for (int j = 0; j < tk; ++j) s[j] /= l;
        std::vector<double> o(dh, 0); for (int j = 0; j < tk; ++j) for (int d = 0; d < dh; ++d) o[d] += s[j] * v[((size_t)b * tk + j) * dh + d];
        for (int d = 0; d < dh; ++d) r.out[((size_t)b * tq + i) * dh + d] = o[d];
        if (dout.empty()) continue;
        double D = 0; for (int d = 0; d < dh; ++d) D += dout[((size_t)b * tq + i) * dh + d] * o[d];
        for (int j = 0; j < tk; ++j) {
            double dp = 0; for (int d = 0; d < dh; ++d) dp += dout[((size_t)b * tq + i) * dh + d] * v[((size_t)b * tk + j) * dh + d];
            double ds = s[j] * (dp - D);
            for (int d = 0; d < dh; ++d) {
                r.dv[((size_t)b * tk + j) * dh + d] += s[j] * dout[((size_t)b * tq + i) * dh + d];
                r.dq[((size_t)b * tq + i) * dh + d] += scale * ds * k[((size_t)b * tk + j) * dh + d];
                r.dk[((size_t)b * tk + j) * dh + d] += scale * ds * q[((size_t)b * tq + i) * dh + d];
            }
        }
    }
    return r;
}

static void attention_case(int bh, int tq, int tk, int dh, float scale) {
    char name[128];
    auto q = rnd((size_t)bh * tq * dh, -2, 2), k = rnd((size_t)bh * tk * dh, -2, 2), v = rnd((size_t)bh * tk * dh, -2, 2), dout = rnd((size_t)bh * tq * dh, -1, 1);
    Ref r = reference(q, k, v, dout, bh, tq, tk, dh, scale);
    std::vector<float> out(r.out.size(), NAN), lse(r.lse.size(), NAN);
    int rc = d4j_attention_forward_f32(q.data(), k.data(), v.data(), out.data(), lse.data(), bh, tq, tk, dh, scale, nullptr);
    std::snprintf(name, sizeof name, "f32 fwd out bh%d tq%d tk%d dh%d", bh, tq, tk, dh); expect(name, rc ? INFINITY : relerr(out, r.out), 1e-5);
    std::snprintf(name, sizeof name, "f32 fwd lse bh%d tq%d tk%d dh%d", bh, tq, tk, dh); expect(name, relerr(lse, r.lse), 1e-6);
    std::vector<float> dq(r.dq.size(), NAN), dk(r.dk.size(), NAN), dv(r.dv.size(), NAN);
    rc = d4j_attention_backward_f32(q.data(), k.data(), v.data(), out.data(), lse.data(), dout.data(), dq.data(), dk.data(), dv.data(), bh, tq, tk, dh, scale, nullptr);
    if (tk == 1) { double n = 0; for (float x : dq) n += x * x; for (float x : dk) n += x * x; expect("one key: |dq|,|dk| ~ 0", std::sqrt(n), 1e-4); }
    if (tk > 1) {  // one key: dq = dk = 0 exactly, checked in absolute terms above
        std::snprintf(name, sizeof name, "f32 bwd dq bh%d tq%d tk%d dh%d", bh, tq, tk, dh); expect(name, rc ? INFINITY : relerr(dq, r.dq), 2e-5);
        std::snprintf(name, sizeof name, "f32 bwd dk"); expect(name, relerr(dk, r.dk), 2e-5);
    }
    std::snprintf(name, sizeof name, "f32 bwd dv"); expect(name, relerr(dv, r.dv), 2e-5);
    std::vector<float> qr(q), kr(k), vr(v); for (auto &x : qr) x = bfr(x); for (auto &x : kr) x = bfr(x); for (auto &x : vr) x = bfr(x);
    Ref rr = reference(qr, kr, vr, {}, bh, tq, tk, dh, scale);
    std::fill(out.begin(), out.end(), NAN); std::fill(lse.begin(), lse.end(), NAN);
    rc = d4j_attention_forward_bf16(q.data(), k.data(), v.data(), out.data(), lse.data(), bh, tq, tk, dh, scale, nullptr);
    std::snprintf(name, sizeof name, "bf16 fwd out (rounded in) dh%d", dh); expect(name, rc ? INFINITY : relerr(out, rr.out), 1e-2);
    std::snprintf(name, sizeof name, "bf16 fwd lse (rounded in) dh%d", dh); expect(name, relerr(lse, rr.lse), 1e-5);
    std::snprintf(name, sizeof name, "bf16 fwd out vs f32 dh%d", dh); expect(name, relerr(out, r.out), 1e-2);
    // BF16 backward from the F32 forward's out and lse, against float64 on BF16-rounded q, k, v, dout
    std::vector<float> dor(dout); for (auto &x : dor) x = bfr(x);
    Ref rb = reference(qr, kr, vr, dor, bh, tq, tk, dh, scale);
    d4j_attention_forward_f32(q.data(), k.data(), v.data(), out.data(), lse.data(), bh, tq, tk, dh, scale, nullptr);
    std::fill(dq.begin(), dq.end(), NAN); std::fill(dk.begin(), dk.end(), NAN); std::fill(dv.begin(), dv.end(), NAN);
    rc = d4j_attention_backward_bf16(q.data(), k.data(), v.data(), out.data(), lse.data(), dout.data(), dq.data(), dk.data(), dv.data(), bh, tq, tk, dh, scale, nullptr);
    if (tk > 1) {
        std::snprintf(name, sizeof name, "bf16 bwd dq (rounded in) dh%d", dh); expect(name, rc ? INFINITY : relerr(dq, rb.dq), 2e-2);
        std::snprintf(name, sizeof name, "bf16 bwd dk (rounded in) dh%d", dh); expect(name, relerr(dk, rb.dk), 2e-2);
        std::snprintf(name, sizeof name, "bf16 bwd dq vs f32 dh%d", dh); expect(name, relerr(dq, r.dq), 3e-2);
        std::snprintf(name, sizeof name, "bf16 bwd dk vs f32 dh%d", dh); expect(name, relerr(dk, r.dk), 3e-2);
    }
    std::snprintf(name, sizeof name, "bf16 bwd dv (rounded in) dh%d", dh); expect(name, rc ? INFINITY : relerr(dv, rb.dv), 1e-2);
    std::snprintf(name, sizeof name, "bf16 bwd dv vs f32 dh%d", dh); expect(name, relerr(dv, r.dv), 1e-2);
}

static void layer_cases() {
    // column sum
    for (auto [rows, cols] : std::vector<std::pair<int, int>>{{1, 1}, {9, 13}, {257, 40}, {0, 5}}) {
        auto dy = rnd((size_t)rows * cols, -1, 1); auto out = rnd(cols, -1, 1); auto old = out;
        std::vector<double> ref(cols); for (int c = 0; c < cols; ++c) { double s = old[c]; for (int r = 0; r < rows; ++r) s += dy[(size_t)r * cols + c]; ref[c] = s; }
        d4j_column_sum_f32(dy.data(), out.data(), rows, cols, 1, nullptr);
        expect("column_sum accumulate", relerr(out, ref), 1e-7);
    }
    // layer norm backward with gamma, beta, scale (stride 3D), dshift, dscale
    int B = 3, T = 5, D = 37; float eps = 1e-5f;
    auto x = rnd((size_t)B * T * D, -3, 3), g = rnd(D, 0.5, 1.5), bt = rnd(D, -.5, .5), scp = rnd((size_t)B * 3 * D, -.5, .5), dy = rnd((size_t)B * T * D, -2, 2);
    std::vector<float> mean(B * T), rstd(B * T);
    for (int r = 0; r < B * T; ++r) { double s = 0; for (int d = 0; d < D; ++d) s += x[(size_t)r * D + d]; float mu = (float)(s / D); double q = 0; for (int d = 0; d < D; ++d) { double c = x[(size_t)r * D + d] - mu; q += c * c; } mean[r] = mu; rstd[r] = (float)(1.0 / std::sqrt(q / D + eps)); }
    const float *sc = scp.data() + D;  // column slice [D, 2D) of [B, 3D]
    std::vector<double> rdx((size_t)B * T * D), rdg(D), rdb(D), rds((size_t)B * D), rdc((size_t)B * D);
    auto dg = rnd(D, -1, 1), db = rnd(D, -1, 1); for (int d = 0; d < D; ++d) { rdg[d] = dg[d]; rdb[d] = db[d]; }
    for (int r = 0; r < B * T; ++r) { int b = r / T; double m1 = 0, m2 = 0; std::vector<double> xh(D), dxh(D);
        for (int d = 0; d < D; ++d) { xh[d] = ((double)x[(size_t)r * D + d] - mean[r]) * rstd[r]; double dn = dy[(size_t)r * D + d] * (1.0 + sc[(size_t)b * 3 * D + d]); dxh[d] = dn * g[d]; m1 += dxh[d]; m2 += dxh[d] * xh[d];
            rdg[d] += dn * xh[d]; rdb[d] += dn; rds[(size_t)b * D + d] += dy[(size_t)r * D + d]; rdc[(size_t)b * D + d] += dy[(size_t)r * D + d] * (xh[d] * g[d] + bt[d]); }
        m1 /= D; m2 /= D; for (int d = 0; d < D; ++d) rdx[(size_t)r * D + d] = rstd[r] * (dxh[d] - m1 - xh[d] * m2); }
    std::vector<float> dx((size_t)B * T * D, NAN), dsp((size_t)B * 3 * D, NAN), dcp((size_t)B * 3 * D, NAN);
    int rc = d4j_layer_norm_backward_f32(x.data(), g.data(), bt.data(), sc, 3 * D, mean.data(), rstd.data(), dy.data(), dx.data(), dg.data(), db.data(), dsp.data() + D, 3 * D, dcp.data() + 2 * D, 3 * D, B, T, D, nullptr);
    expect("ln bwd dx", rc ? INFINITY : relerr(dx, rdx), 1e-5);
    expect("ln bwd dgamma", relerr(dg, rdg), 1e-6);
    expect("ln bwd dbeta", relerr(db, rdb), 1e-6);
    std::vector<float> ds(B * D), dc(B * D); int nanbad = 0;
    for (int b = 0; b < B; ++b) for (int c = 0; c < 3 * D; ++c) { float vs = dsp[(size_t)b * 3 * D + c], vc = dcp[(size_t)b * 3 * D + c];
        if (c >= D && c < 2 * D) ds[(size_t)b * D + c - D] = vs; else if (!std::isnan(vs)) ++nanbad;
        if (c >= 2 * D) dc[(size_t)b * D + c - 2 * D] = vc; else if (!std::isnan(vc)) ++nanbad; }
    expect("ln bwd dshift", relerr(ds, rds), 1e-6); expect("ln bwd dscale", relerr(dc, rdc), 1e-6); expect("ln bwd writes only its slices", nanbad, 0);
    // embedding: plan from a host grouping
    int N = 50, V = 11, DE = 33; std::vector<int> idx(N); for (auto &i : idx) i = (int)(rng() % V);
    auto dye = rnd((size_t)N * DE, -1, 1), table = rnd((size_t)V * DE, -1, 1); auto ref = table;
    for (int i = 0; i < N; ++i) for (int d = 0; d < DE; ++d) ref[(size_t)idx[i] * DE + d] = ref[(size_t)idx[i] * DE + d] + dye[(size_t)i * DE + d];
    std::vector<int> rowsv, starts, order; for (int v = V - 1; v >= 0; --v) { bool any = false; for (int i = 0; i < N; ++i) if (idx[i] == v) { if (!any) { rowsv.push_back(v); starts.push_back((int)order.size()); any = true; } order.push_back(i); } }
    starts.push_back(N); std::vector<int32_t> plan(order); plan.insert(plan.end(), starts.begin(), starts.end()); plan.insert(plan.end(), rowsv.begin(), rowsv.end());
    rc = d4j_embedding_backward_f32(dye.data(), table.data(), V, DE, plan.data(), N, (int64_t)rowsv.size(), nullptr);
    int diff = 0; for (size_t i = 0; i < table.size(); ++i) if (table[i] != ref[i]) ++diff;
    expect("embedding bitwise sequential", rc ? 1e9 : diff, 0);
}

int main() {
    attention_case(1, 50, 1, 64, 0.125f);
    attention_case(1, 300, 300, 64, 0.125f);
    attention_case(2, 1, 197, 1, 1.0f);
    attention_case(2, 50, 70, 40, 0.158f);
    attention_case(1, 1, 1, 32, 0.17f);
    attention_case(1, 65, 129, 128, 0.0884f);
    attention_case(3, 64, 64, 64, 0.3f);
    attention_case(1, 33, 7, 7, 0.378f);
    attention_case(1, 100, 100, 100, 0.1f);
    layer_cases();
    std::printf("%d failures\n", fails);
    return fails != 0;
}
