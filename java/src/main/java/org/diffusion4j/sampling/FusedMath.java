package org.diffusion4j.sampling;

/**
 * The per-element arithmetic of the fused diffusion ops ({@link DiffusionOps}), written once so that every
 * implementation — the CPU loops of {@code org.diffusion4j.cpu.CpuDiffusionOps}, the composed reference
 * {@link ComposedDiffusionOps} and the CUDA kernels of {@code org.diffusion4j.cuda.CudaDiffusionOps}
 * ({@code native/src/diffusion.cu}) — evaluates the same float operations in the same
 * order. Coefficients are computed per sample on the host in {@code double} and rounded to {@code float} once;
 * everything here is {@code float} arithmetic, two roundings per {@code a·b + c} (Java never contracts; a kernel
 * must use {@code __fmul_rn}/{@code __fadd_rn} or accept ~1 ulp differences).
 *
 * <h2>Sampler step (one pass over the batch, per sample {@code b}, element {@code j})</h2>
 * <pre>
 *   g  = c + (w − 1)·(c − u)                       classifier-free guidance (Ho &amp; Salimans 2022, eq. 6,
 *                                                  whose w is this w − 1); exactly c at w = 1; g = c when
 *                                                  there is no uncond
 *   g  = f_b·g                                     guidance rescale (Lin et al. 2023, §3.4), f_b from phase 1
 *   D  = ka_b·xIn + kb_b·g                         the model output converted to the working prediction
 *                                                  (PredictionConversion at the level of xIn); written to histOut
 *   xo = ax_b·x + ai_b·xIn + ag_b·g + ah_b·h + az_b·z    the update, z = NoiseSeeds normal of this step's draw
 * </pre>
 * evaluated left to right. A term whose coefficient is 0 for a sample is skipped: its operand is not read (NaN in
 * it does not propagate) and no noise is generated for it.
 *
 * <p><b>Phase 1 (only when the rescale φ ≠ 0).</b> Before writing sample {@code b}, one read of its {@code c}
 * and {@code u} accumulates, in {@code double}, shifted sums of {@code c} and of the unrescaled {@code g}
 * (shift = the sample's first element): {@code S1 = Σ(v − v_0)}, {@code S2 = Σ(v − v_0)²}, giving the population
 * variance {@link #variance}; then {@code f_b = }{@link #rescaleFactor}. Partial sums are taken over fixed
 * chunks of the sample and added in chunk order, so the result depends neither on the thread count nor on the
 * batch the sample is in.
 *
 * <h2>Forward noising (per sample {@code b}, element {@code j})</h2>
 * <pre>
 *   ε  = z(b, j) [+ strength·δ(b, channel(j))]     Philox normals, NoiseSeeds draws 0 and 2 (offset noise)
 *   xt = a_b·x0 + s_b·ε
 *   target = c_b·x0 + d_b·ε
 * </pre>
 */
public final class FusedMath {

    private FusedMath() {
    }

    /**
     * Classifier-free guidance {@code uncond + w·(cond − uncond)} written as {@code cond + (w − 1)·(cond − uncond)},
     * which is exactly {@code cond} for {@code w = 1}. That is Ho &amp; Salimans 2022 ("Classifier-Free Diffusion
     * Guidance", eq. 6) {@code (1 + w')·cond − w'·uncond} with their {@code w' = w − 1 = wMinus1}.
     *
     * @param cond    the conditional model output
     * @param uncond  the unconditional model output
     * @param wMinus1 {@code w − 1} (the paper's {@code w'})
     * @return the guided output
     */
    public static float guide(float cond, float uncond, float wMinus1) {
        return cond + wMinus1 * (cond - uncond);
    }

    /**
     * Guidance-rescale factor {@code f = φ·std(cond)/std(g) + (1 − φ)} (Lin et al. 2023, "Common Diffusion Noise
     * Schedules and Sample Steps are Flawed", §3.4, eq. 15–16; diffusers {@code rescale_noise_cfg}); the ratio of
     * standard deviations over one sample's elements, so biased and unbiased estimates give the same factor.
     * Returns exactly 1 for {@code φ = 0}, and 1 when {@code var(g)} is not positive (a constant guided output
     * cannot be rescaled).
     */
    public static double rescaleFactor(double phi, double varCond, double varGuided) {
        if (phi == 0 || !(varGuided > 0)) {
            return 1.0;
        }
        return phi * Math.sqrt(varCond / varGuided) + (1.0 - phi);
    }

    /** Population variance from shifted sums {@code s1 = Σ(v − K)}, {@code s2 = Σ(v − K)²} over {@code n} values. */
    public static double variance(long n, double s1, double s2) {
        if (n <= 0) {
            return 0.0;
        }
        double m2 = s2 - s1 * s1 / n;
        return Math.max(0.0, m2 / n);
    }

    /** The model output converted to the working prediction: {@code ka·xIn + kb·g}. */
    public static float prediction(float ka, float xIn, float kb, float g) {
        return ka * xIn + kb * g;
    }

    /** The step update {@code ax·x + ai·xIn + ag·g + ah·h + az·z}, left to right. */
    public static float update(float ax, float x, float ai, float xIn, float ag, float g, float ah, float h,
                               float az, float z) {
        return ax * x + ai * xIn + ag * g + ah * h + az * z;
    }

    /** Forward noising and targets: {@code a·x0 + s·ε}. */
    public static float noised(float a, float x0, float s, float eps) {
        return a * x0 + s * eps;
    }

    /** Offset noise {@code ε + strength·δ} (Guttenberg 2023; {@link org.diffusion4j.training.OffsetNoise}). */
    public static float offset(float eps, float strength, float delta) {
        return eps + strength * delta;
    }

    /** Noise injection {@code a·x + s·z} ({@link DiffusionOps#scaleAddNoise}). */
    public static float scaleAdd(float a, float x, float s, float z) {
        return a * x + s * z;
    }
}
