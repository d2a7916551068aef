package org.diffusion4j.sampling;

import org.diffusion4j.sampling.SamplerContext.Update;
import org.diffusion4j.schedule.Prediction;
import org.diffusion4j.tensor.Tensor;

import java.util.Locale;
import java.util.Objects;

/**
 * The samplers, each one short function whose lines follow its paper (cf. k-diffusion's {@code sampling.py}).
 *
 * <h2>Common form</h2>
 * Every sampler keeps the state in the schedule's own parameterisation {@code x_t = α x0 + σ ε} (no VE rescaling
 * of the state), walks the grid by its step counter {@code i} (level {@code i → i + 1}; never a time lookup by
 * value), evaluates the model once per stage ({@link SamplerContext#evaluate}) and applies each stage as one fused
 * pass ({@link SamplerContext#update}) with guidance inside. Notation: {@code t} the current level, {@code s} the
 * next, {@code D} the denoised prediction, {@code σ̃ = σ/α} the VE noise level, {@code λ = ln(α/σ)} the
 * half log-SNR ({@link Level#halfLogSnr}; DPM-Solver's {@code λ}, half of the {@code schedule} package's log-SNR),
 * {@code h = λ_s − λ_t}, {@code q = σ̃_s/σ̃_t = e^{−h}}. Stochastic samplers draw the noise of step {@code i} from
 * draw {@code i + 1} of the context's {@link NoiseSeeds} (draw 0 is the initial noise).
 *
 * <p>Three first-order updates coincide exactly in this form: DDIM with {@code η = 0}, Euler in {@code σ̃}
 * (Karras et al. 2022, §3: DDIM is Euler's method on their ODE) and, on a rectified-flow path, flow Euler; and
 * DDIM with {@code η = 1} equals DDPM with {@code fixed_small} variance and Euler ancestral with {@code η = 1}.
 * They are kept as separate samplers under the names people look for, each written in its own paper's terms.
 *
 * <h2>Factories and algorithm bodies</h2>
 * Each algorithm has a factory ({@link #ddim(double)}, …) that checks its parameters and returns a {@link Sampler}
 * to pass to {@link SamplerContext#sample}, and a public static body of the same name
 * ({@link #ddim(SamplerContext, Tensor, SamplingGrid, double)}, …) that runs it, for custom samplers that reuse one.
 * A body makes the factory's checks itself, before its first model call. Common to the bodies: {@code x} is
 * {@code [B, ...]} F32, contiguous, on the context's backend, holds the state at {@code grid.first()} on entry and
 * the state at {@code grid.last()} on return (updated in place); {@code grid} runs from noise to data. Besides the
 * {@code @throws} of each body, any of them passes on the exceptions of {@link SamplerContext#evaluate} and
 * {@link SamplerContext#update}: {@link IllegalStateException} for a closed context, for missing
 * {@link NoiseSeeds} when a step draws noise, or for non-finite model outputs with
 * {@link SamplerContext.Builder#checkFinite}; {@link IllegalArgumentException} for an {@code x} without a batch
 * dimension, seeds of another batch size, or a prediction that cannot be converted at a level (an
 * {@code EPSILON} model at {@code α = 0}); {@link java.util.concurrent.CancellationException} when the thread is
 * interrupted (then {@code x} holds a partly sampled state).
 */
public final class Samplers {

    private Samplers() {
    }

    /** DDPM posterior variance choice (Ho et al. 2020, §3.2; diffusers {@code variance_type}). */
    public enum DdpmVariance {
        /** {@code σ_s²(1 − q²)}: the posterior variance {@code β̃} ({@code fixed_small}). */
        FIXED_SMALL,
        /** {@code σ_t²(1 − q²)}: {@code β} of the (skipped) step ({@code fixed_large}); no noise into clean data. */
        FIXED_LARGE
    }

    /**
     * Stochastic "churn" of Karras et al. 2022, Algorithm 2: at levels with {@code σ̃ ∈ [S_tmin, S_tmax]} the
     * noise level is raised to {@code σ̂ = σ̃(1 + γ)}, {@code γ = min(S_churn/N, √2 − 1)}, by adding
     * {@code √(σ̂² − σ̃²)·S_noise·z} (capped at the schedule's largest level).
     *
     * @param sChurn {@code S_churn ≥ 0} (0: deterministic)
     * @param sTmin  {@code S_tmin ≥ 0}
     * @param sTmax  {@code S_tmax ≥ S_tmin} (may be {@code +∞})
     * @param sNoise {@code S_noise ≥ 0} (1; Karras et al. use 1.003–1.007)
     */
    public record Churn(double sChurn, double sTmin, double sTmax, double sNoise) {
        /** No churn (Algorithm 1). */
        public static final Churn NONE = new Churn(0, 0, Double.POSITIVE_INFINITY, 1);

        /** Validates the parameters. */
        public Churn {
            if (!(sChurn >= 0 && sChurn < Double.POSITIVE_INFINITY && sTmin >= 0 && sTmax >= sTmin
                    && sNoise >= 0 && sNoise < Double.POSITIVE_INFINITY)) {
                throw new IllegalArgumentException("need sChurn >= 0, 0 <= sTmin <= sTmax, sNoise >= 0 (finite), got "
                        + "sChurn = " + sChurn + ", sTmin = " + sTmin + ", sTmax = " + sTmax + ", sNoise = " + sNoise);
            }
        }

        /**
         * {@code γ_i = min(S_churn/N, √2 − 1)} for {@code σ̃ ∈ [S_tmin, S_tmax]}, else 0 (Karras et al. 2022,
         * Algorithm 2: the definition of {@code γ_i} beside line 1; it is used on line 5).
         *
         * @param sigmaVe the VE noise level {@code σ̃ = σ/α} of step {@code i}
         * @param steps   {@code N ≥ 1}, the number of steps of the run
         * @return {@code γ_i ∈ [0, √2 − 1]}
         * @throws IllegalArgumentException for {@code N < 1}
         */
        public double gamma(double sigmaVe, int steps) {
            if (steps < 1) {
                throw new IllegalArgumentException("churn needs the run's step count N >= 1, got " + steps);
            }
            if (sChurn == 0 || !(sigmaVe >= sTmin && sigmaVe <= sTmax)) {
                return 0;
            }
            return Math.min(sChurn / steps, Math.sqrt(2) - 1);
        }
    }

    // ================================================================ factories
    // Each factory's sampler prints as its name (the CLI's spelling, which byName takes) and parameters, e.g.
    // "dpmpp-2m", "ddim(eta=0.0)".

    private record Named(String name, Sampler algorithm) implements Sampler {
        @Override
        public void sample(SamplerContext ctx, Tensor x, SamplingGrid grid) {
            algorithm.sample(ctx, x, grid);
        }

        @Override
        public String toString() {
            return name;
        }
    }

    private static Sampler named(String name, Sampler algorithm) {
        return new Named(name, algorithm);
    }

    /**
     * DDPM ancestral sampling with the given posterior variance (Ho et al. 2020, Algorithm 2; see
     * {@link #ddpm(SamplerContext, Tensor, SamplingGrid, DdpmVariance)}).
     *
     * @throws NullPointerException for a null {@code variance}
     */
    public static Sampler ddpm(DdpmVariance variance) {
        Objects.requireNonNull(variance, "variance");
        return named("ddpm(" + variance.name().toLowerCase(Locale.ROOT).replace('_', '-') + ")",
                (ctx, x, grid) -> ddpm(ctx, x, grid, variance));
    }

    /**
     * DDIM (Song et al. 2021a, eq. 12 and 16; see {@link #ddim(SamplerContext, Tensor, SamplingGrid, double)}).
     *
     * @param eta stochasticity {@code η ≥ 0}, finite (0: deterministic, 1: DDPM-like)
     * @throws IllegalArgumentException for a negative or non-finite {@code η}
     */
    public static Sampler ddim(double eta) {
        requireNonNegative(eta, "eta");
        return named("ddim(eta=" + eta + ")", (ctx, x, grid) -> ddim(ctx, x, grid, eta));
    }

    /**
     * Euler's method on the probability-flow ODE in {@code σ̃} (Karras et al. 2022, eq. 4, Algorithm 1 without the
     * correction; see {@link #euler(SamplerContext, Tensor, SamplingGrid)}).
     */
    public static Sampler euler() {
        return named("euler", Samplers::euler);
    }

    /**
     * Euler ancestral (k-diffusion's {@code sample_euler_ancestral}; see
     * {@link #eulerAncestral(SamplerContext, Tensor, SamplingGrid, double, double)}).
     *
     * @param eta    {@code η ≥ 0}, finite (k-diffusion's default 1)
     * @param sNoise noise scale {@code s_noise ≥ 0}, finite (k-diffusion's default 1)
     * @throws IllegalArgumentException for a negative or non-finite {@code η} or {@code s_noise}
     */
    public static Sampler eulerAncestral(double eta, double sNoise) {
        requireNonNegative(eta, "eta");
        requireNonNegative(sNoise, "sNoise");
        return named("euler-ancestral(eta=" + eta + ", s-noise=" + sNoise + ")",
                (ctx, x, grid) -> eulerAncestral(ctx, x, grid, eta, sNoise));
    }

    /**
     * Heun's second-order method, deterministic (Karras et al. 2022, Algorithm 1; see
     * {@link #heun(SamplerContext, Tensor, SamplingGrid, Churn)}).
     */
    public static Sampler heun() {
        return heun(Churn.NONE);
    }

    /**
     * Heun's method with churn (Karras et al. 2022, Algorithm 2; see
     * {@link #heun(SamplerContext, Tensor, SamplingGrid, Churn)}).
     *
     * @throws NullPointerException for a null {@code churn}
     */
    public static Sampler heun(Churn churn) {
        Objects.requireNonNull(churn, "churn");
        return named(churn.equals(Churn.NONE) ? "heun" : "heun(" + churn + ")",
                (ctx, x, grid) -> heun(ctx, x, grid, churn));
    }

    /**
     * DPM-Solver++(2M) (Lu et al. 2022b, Algorithm 2; see {@link #dpmSolverPp2m(SamplerContext, Tensor,
     * SamplingGrid)}).
     */
    public static Sampler dpmSolverPp2m() {
        return named("dpmpp-2m", Samplers::dpmSolverPp2m);
    }

    /**
     * DPM-Solver++(2M) SDE (k-diffusion's {@code sample_dpmpp_2m_sde}; see
     * {@link #dpmSolverPp2mSde(SamplerContext, Tensor, SamplingGrid, double, double)}).
     *
     * @param eta    {@code η ≥ 0}, finite (k-diffusion's default 1; 0 is DPM-Solver++(2M))
     * @param sNoise noise scale {@code s_noise ≥ 0}, finite (k-diffusion's default 1)
     * @throws IllegalArgumentException for a negative or non-finite {@code η} or {@code s_noise}
     */
    public static Sampler dpmSolverPp2mSde(double eta, double sNoise) {
        requireNonNegative(eta, "eta");
        requireNonNegative(sNoise, "sNoise");
        return named("dpmpp-2m-sde(eta=" + eta + ", s-noise=" + sNoise + ")",
                (ctx, x, grid) -> dpmSolverPp2mSde(ctx, x, grid, eta, sNoise));
    }

    /**
     * Flow-matching Euler (Liu et al. 2022, eq. 1 integrated by Euler's method; see
     * {@link #flowEuler(SamplerContext, Tensor, SamplingGrid)}).
     */
    public static Sampler flowEuler() {
        return named("flow-euler", Samplers::flowEuler);
    }

    /**
     * Flow-matching explicit midpoint rule (second-order Runge–Kutta; see
     * {@link #flowMidpoint(SamplerContext, Tensor, SamplingGrid)}).
     */
    public static Sampler flowMidpoint() {
        return named("flow-midpoint", Samplers::flowMidpoint);
    }

    /**
     * UniPC-2 with the UniC corrector (Zhao et al. 2023, Algorithms 1–2, "bh2"; see
     * {@link #uniPc(SamplerContext, Tensor, SamplingGrid)}).
     */
    public static Sampler uniPc() {
        return named("unipc", Samplers::uniPc);
    }

    /**
     * DPM-Solver++(3M), deterministic: {@link #dpmSolverPp3mSde(SamplerContext, Tensor, SamplingGrid, double, double)}
     * with {@code η = 0} (k-diffusion's {@code sample_dpmpp_3m_sde} at {@code eta=0}; diffusers'
     * {@code solver_order=3}).
     */
    public static Sampler dpmSolverPp3m() {
        return named("dpmpp-3m", (ctx, x, grid) -> dpmSolverPp3mSde(ctx, x, grid, 0, 0));
    }

    /**
     * DPM-Solver++(3M) SDE (k-diffusion's {@code sample_dpmpp_3m_sde}; see
     * {@link #dpmSolverPp3mSde(SamplerContext, Tensor, SamplingGrid, double, double)}).
     *
     * @param eta    stochasticity {@code η ≥ 0}, finite (k-diffusion's default 1; keep {@code η ≤ 1})
     * @param sNoise noise scale {@code s_noise ≥ 0}, finite (k-diffusion's default 1)
     * @throws IllegalArgumentException for a negative or non-finite {@code η} or {@code s_noise}
     */
    public static Sampler dpmSolverPp3mSde(double eta, double sNoise) {
        requireNonNegative(eta, "eta");
        requireNonNegative(sNoise, "sNoise");
        return named("dpmpp-3m-sde(eta=" + eta + ", s-noise=" + sNoise + ")",
                (ctx, x, grid) -> dpmSolverPp3mSde(ctx, x, grid, eta, sNoise));
    }

    /**
     * RePaint's resampling (Lugmayr et al. 2022, "RePaint: Inpainting using Denoising Diffusion Probabilistic
     * Models", Algorithm 1 with the jumps of §4.2) around DDPM ancestral steps: after {@code jumpLength} steps the
     * state is noised back up the same levels and the stretch is sampled again, {@code resamplings} times in all,
     * which lets the generated region agree with the known one under inpainting ({@link SamplerContext.Builder#inpaint})
     * far better than replacement alone. Costs {@code resamplings} times the model calls of {@link #ddpm}.
     *
     * @param resamplings {@code U ≥ 1}, passes over each stretch (1: plain DDPM; the paper uses 10)
     * @param jumpLength  {@code j ≥ 1}, steps per stretch (the paper uses 10 of 250)
     * @throws IllegalArgumentException for {@code U} or {@code j} below 1 or above 1000, naming it
     * @see #repaint(SamplerContext, Tensor, SamplingGrid, int, int)
     */
    public static Sampler repaint(int resamplings, int jumpLength) {
        requireRepaint(resamplings, jumpLength);
        return named("repaint(u=" + resamplings + ", jump=" + jumpLength + ")",
                (ctx, x, grid) -> repaint(ctx, x, grid, resamplings, jumpLength));
    }

    /**
     * A sampler by its k-diffusion / diffusers-style name, with default parameters: {@code ddpm}
     * (fixed_small), {@code ddpm_large}, {@code ddim} (η = 0), {@code euler}, {@code euler_ancestral},
     * {@code heun}, {@code dpmpp_2m}, {@code dpmpp_2m_sde}, {@code dpmpp_3m}, {@code dpmpp_3m_sde} (η = 1),
     * {@code flow_euler}, {@code flow_midpoint}, {@code unipc},
     * {@code repaint} (U = 10, j = 10); case, surrounding blanks and
     * {@code -} versus {@code _} do not matter ({@code DPMPP-2M} is {@code dpmpp_2m}, as the CLI spells it). Also
     * taken: {@code euler_a}, {@code dpm++2m}, {@code dpm++2m_sde}, {@code dpm++3m}, {@code dpm++3m_sde}. A sampler
     * prints ({@code toString}) with hyphens and its parameters, e.g. {@code dpmpp-2m-sde(eta=1.0, s-noise=1.0)}.
     *
     * @param name the sampler's name
     * @return the sampler with its default parameters
     * @throws NullPointerException     for a null {@code name}
     * @throws IllegalArgumentException for an unknown name, listing the known ones
     */
    public static Sampler byName(String name) {
        Objects.requireNonNull(name, "sampler name");
        return switch (name.trim().toLowerCase(Locale.ROOT).replace('-', '_')) {
            case "ddpm" -> ddpm(DdpmVariance.FIXED_SMALL);
            case "ddpm_large" -> ddpm(DdpmVariance.FIXED_LARGE);
            case "ddim" -> ddim(0);
            case "euler" -> euler();
            case "euler_ancestral", "euler_a" -> eulerAncestral(1, 1);
            case "heun" -> heun();
            case "dpmpp_2m", "dpm++2m" -> dpmSolverPp2m();
            case "dpmpp_2m_sde", "dpm++2m_sde" -> dpmSolverPp2mSde(1, 1);
            case "flow_euler" -> flowEuler();
            case "flow_midpoint" -> flowMidpoint();
            case "dpmpp_3m", "dpm++3m" -> dpmSolverPp3m();
            case "dpmpp_3m_sde", "dpm++3m_sde" -> dpmSolverPp3mSde(1, 1);
            case "unipc" -> uniPc();
            case "repaint" -> repaint(10, 10);
            default -> throw new IllegalArgumentException("unknown sampler '" + name + "'; expected ddpm, ddpm_large,"
                    + " ddim, euler, euler_ancestral, heun, dpmpp_2m, dpmpp_2m_sde, dpmpp_3m, dpmpp_3m_sde, flow_euler,"
                    + " flow_midpoint, unipc or repaint");
        };
    }

    // ================================================================ algorithms

    /**
     * DDPM ancestral sampling (Ho et al. 2020, "Denoising Diffusion Probabilistic Models", Algorithm 2), each step
     * drawing from the Gaussian posterior {@code q(x_s | x_t, x0 = D)} (ibid. eq. 6–7), written for any pair of
     * levels (Kingma et al. 2021, "Variational Diffusion Models", App. A: {@code α_{t|s} = α_t/α_s},
     * {@code σ²_{t|s} = σ_t² − α²_{t|s} σ_s² = σ_t²(1 − q²)}):
     * <pre>
     *   μ = q·(σ_s/σ_t)·x_t + α_s(1 − q²)·D        (= α_{t|s}σ_s²/σ_t²·x_t + α_s σ²_{t|s}/σ_t²·D)
     *   x_s = μ + std·z,   std = σ_s√(1 − q²) (fixed_small) or σ_t√(1 − q²) (fixed_large; 0 into σ_s = 0)
     * </pre>
     *
     * @param ctx  the model, guidance, noise seeds and fused ops
     * @param x    {@code [B, ...]} F32 contiguous: the state at {@code grid.first()} in, at {@code grid.last()} out
     * @param grid the levels, noisiest first
     * @param variance the posterior variance
     * @throws NullPointerException     for a null argument
     * @throws IllegalStateException    when the context has no {@link NoiseSeeds} (every step into {@code σ > 0}
     *                                  draws noise); see the class notes for the exceptions of every body
     */
    public static void ddpm(SamplerContext ctx, Tensor x, SamplingGrid grid, DdpmVariance variance) {
        if (ctx != null && !ctx.sampling()) {          // a direct call: through sample() (see SamplerContext.sampling)
            ctx.sample((c, y, g) -> ddpm(c, y, g, variance), x, grid);
            return;
        }
        requireRun(ctx, x, grid);
        Objects.requireNonNull(variance, "variance");
        for (int i = 0; i < grid.steps(); i++) {
            Level t = grid.level(i);
            Level s = grid.level(i + 1);
            ctx.evaluate(x, t);
            double q = t.ratioTo(s);
            double oneMinusQ2 = oneMinusQ2(t, s);
            double std = s.sigma() == 0 ? 0 : switch (variance) {
                case FIXED_SMALL -> s.sigma() * Math.sqrt(oneMinusQ2);
                case FIXED_LARGE -> t.sigma() * Math.sqrt(oneMinusQ2);
            };
            ctx.update(Update.denoised(q * s.sigma() / t.sigma(), s.alpha() * oneMinusQ2).withNoise(std, i + 1),
                    x, x, false);
            ctx.afterStep(x, grid, i + 1);
        }
    }

    /**
     * RePaint (Lugmayr et al. 2022, Algorithm 1; jumps as in their §4.2 and Fig. 4): the grid is walked in stretches
     * of {@code j} levels {@code a → b}; each stretch is sampled with DDPM steps ({@code fixed_small}, each followed by
     * {@link SamplerContext#afterStep}, where inpainting replaces the known region), and, {@code U − 1} times, the
     * state at {@code b} is noised back to {@code a} in one draw from the forward process (Kingma et al. 2021, App. A)
     * <pre>
     *   x_a = (α_a/α_b)·x_b + √(σ_a² − (α_a/α_b)²σ_b²)·z
     * </pre>
     * and the stretch is sampled again. Draws: the step {@code i} of pass {@code r} uses draw {@code 1 + i + r·N},
     * the jump back of pass {@code r} draw {@code 1 + a + (U + r)·N}, the replacement after step {@code i} of pass
     * {@code r} draw {@code DRAW_INPAINT + (i + 1) + r·(N + 1)} and the one after the jump back of pass {@code r} draw
     * {@code DRAW_INPAINT + a + (U + r)·(N + 1)}, so no two draws of a run coincide.
     *
     * @param ctx  the model, guidance, noise seeds and fused ops
     * @param x    {@code [B, ...]} F32 contiguous: the state at {@code grid.first()} in, at {@code grid.last()} out
     * @param grid the levels, noisiest first
     * @param resamplings {@code U ∈ [1, 1000]}, passes over each stretch
     * @param jumpLength  {@code j ∈ [1, 1000]}, steps per stretch
     * @throws NullPointerException     for a null argument
     * @throws IllegalArgumentException for {@code U} or {@code j} outside {@code [1, 1000]}, naming it
     * @throws IllegalStateException    when the context has no {@link NoiseSeeds}; see the class notes for the
     *                                  exceptions of every body
     */
    public static void repaint(SamplerContext ctx, Tensor x, SamplingGrid grid, int resamplings, int jumpLength) {
        if (ctx != null && !ctx.sampling()) {          // a direct call: through sample() (see SamplerContext.sampling)
            ctx.sample((c, y, g) -> repaint(c, y, g, resamplings, jumpLength), x, grid);
            return;
        }
        requireRun(ctx, x, grid);
        requireRepaint(resamplings, jumpLength);
        int n = grid.steps();
        for (int a = 0; a < n; a += jumpLength) {
            int b = Math.min(a + jumpLength, n);
            for (int r = 0; r < resamplings; r++) {
                for (int i = a; i < b; i++) {
                    Level t = grid.level(i);
                    Level s = grid.level(i + 1);
                    ctx.evaluate(x, t);
                    double q = t.ratioTo(s);
                    double oneMinusQ2 = oneMinusQ2(t, s);
                    double std = s.sigma() == 0 ? 0 : s.sigma() * Math.sqrt(oneMinusQ2);
                    ctx.update(Update.denoised(q * s.sigma() / t.sigma(), s.alpha() * oneMinusQ2)
                            .withNoise(std, 1 + i + (long) r * n), x, x, false);
                    ctx.afterStep(x, grid, i + 1, r);
                }
                if (r < resamplings - 1) {
                    Level hi = grid.level(a);
                    Level lo = grid.level(b);
                    double ratio = hi.alpha() / lo.alpha();                              // α_{a|b}
                    double added = hi.sigma() * Math.sqrt(oneMinusQ2(hi, lo));            // σ_a √(1 − e^{−2h})
                    ctx.addNoise(x, ratio, added, 1 + a + (long) (resamplings + r) * n);
                    ctx.afterStep(x, grid, a, resamplings + r);   // passes U … 2U−2: draws of their own
                }
            }
        }
    }

    /**
     * DDIM (Song et al. 2021, "Denoising Diffusion Implicit Models", eq. 12 with {@code σ_η} of eq. 16, in
     * {@code (α, σ)} form):
     * <pre>
     *   ε̂ = (x_t − α_t D)/σ_t,   σ_η = min(σ_s, η·σ_s√(1 − q²))
     *   x_s = α_s D + √(σ_s² − σ_η²)·ε̂ + σ_η·z
     * </pre>
     * For a VP schedule {@code σ_s√(1 − q²) = √((1−ᾱ_s)/(1−ᾱ_t))·√(1 − ᾱ_t/ᾱ_s)}, the paper's {@code σ_t(η)}.
     *
     * @param ctx  the model, guidance, noise seeds and fused ops
     * @param x    {@code [B, ...]} F32 contiguous: the state at {@code grid.first()} in, at {@code grid.last()} out
     * @param grid the levels, noisiest first
     * @param eta  {@code η ≥ 0}, finite (0: deterministic)
     * @throws NullPointerException     for a null argument
     * @throws IllegalArgumentException for a negative or non-finite {@code η}
     * @throws IllegalStateException    for {@code η > 0} when the context has no {@link NoiseSeeds}; see the class
     *                                  notes for the exceptions of every body
     */
    public static void ddim(SamplerContext ctx, Tensor x, SamplingGrid grid, double eta) {
        if (ctx != null && !ctx.sampling()) {          // a direct call: through sample() (see SamplerContext.sampling)
            ctx.sample((c, y, g) -> ddim(c, y, g, eta), x, grid);
            return;
        }
        requireRun(ctx, x, grid);
        requireNonNegative(eta, "eta");
        for (int i = 0; i < grid.steps(); i++) {
            Level t = grid.level(i);
            Level s = grid.level(i + 1);
            ctx.evaluate(x, t);
            double sigmaEta = Math.min(s.sigma(), eta * s.sigma() * Math.sqrt(oneMinusQ2(t, s)));
            double e = Math.sqrt((s.sigma() - sigmaEta) * (s.sigma() + sigmaEta)) / t.sigma();   // coefficient of ε̂
            ctx.update(Update.denoised(e, s.alpha() - e * t.alpha()).withNoise(sigmaEta, i + 1), x, x, false);
            ctx.afterStep(x, grid, i + 1);
        }
    }

    /**
     * Euler's method on the probability-flow ODE {@code dx̃/dσ̃ = (x̃ − D)/σ̃}, {@code x̃ = x/α} (Karras et al.
     * 2022, "Elucidating the Design Space of Diffusion-Based Generative Models", eq. 4 and Algorithm 1 without the
     * correction; k-diffusion {@code sample_euler}):
     * <pre>
     *   x̃_s = x̃ + (σ̃_s − σ̃_t)·d,  d = (x̃ − D)/σ̃_t      ⇔   x_s = (σ_s/σ_t)·x_t + α_s(1 − q)·D
     * </pre>
     *
     * @param ctx  the model, guidance, noise seeds and fused ops
     * @param x    {@code [B, ...]} F32 contiguous: the state at {@code grid.first()} in, at {@code grid.last()} out
     * @param grid the levels, noisiest first
     * @throws NullPointerException     for a null argument
     * @throws IllegalArgumentException as every body does (class notes), e.g. for an {@code EPSILON} model at
     *                                  {@code α = 0}
     */
    public static void euler(SamplerContext ctx, Tensor x, SamplingGrid grid) {
        if (ctx != null && !ctx.sampling()) {          // a direct call: through sample() (see SamplerContext.sampling)
            ctx.sample((c, y, g) -> euler(c, y, g), x, grid);
            return;
        }
        requireRun(ctx, x, grid);
        for (int i = 0; i < grid.steps(); i++) {
            Level t = grid.level(i);
            Level s = grid.level(i + 1);
            ctx.evaluate(x, t);
            ctx.update(eulerUpdate(t, s), x, x, false);
            ctx.afterStep(x, grid, i + 1);
        }
    }

    /**
     * Euler ancestral, as k-diffusion's {@code sample_euler_ancestral} and {@code get_ancestral_step} compute it (no
     * paper equation): an Euler step down to {@code σ_down}, then fresh noise up to {@code σ̃_s}. The split is DDIM's
     * (Song et al. 2021a, "Denoising Diffusion Implicit Models", eq. 12 with {@code σ_t(η)} of eq. 16) in VE form:
     * {@code σ_up} is DDIM's {@code σ_η/α_s}, which is why {@code η = 1} equals DDPM ({@code fixed_small}):
     * <pre>
     *   σ_up = min(σ̃_s, η·σ̃_s√(1 − q²)),   σ_down = √(σ̃_s² − σ_up²)          (k-diffusion get_ancestral_step)
     *   x̃_s = D + σ_down·(x̃ − D)/σ̃_t + s_noise·σ_up·z   ⇔   x_s = α_s σ_down/σ_t·x_t + α_s(1 − σ_down/σ̃_t)·D + α_s s_noise σ_up·z
     * </pre>
     * {@code σ_up ≤ σ̃_s} always (so {@code σ_down} is real for any {@code η}).
     *
     * @param ctx  the model, guidance, noise seeds and fused ops
     * @param x    {@code [B, ...]} F32 contiguous: the state at {@code grid.first()} in, at {@code grid.last()} out
     * @param grid the levels, noisiest first
     * @param eta    {@code η ≥ 0}, finite
     * @param sNoise {@code s_noise ≥ 0}, finite
     * @throws NullPointerException     for a null argument
     * @throws IllegalArgumentException for a negative or non-finite {@code η} or {@code s_noise}
     * @throws IllegalStateException    for {@code η > 0} when the context has no {@link NoiseSeeds}; see the class
     *                                  notes for the exceptions of every body
     */
    public static void eulerAncestral(SamplerContext ctx, Tensor x, SamplingGrid grid, double eta, double sNoise) {
        if (ctx != null && !ctx.sampling()) {          // a direct call: through sample() (see SamplerContext.sampling)
            ctx.sample((c, y, g) -> eulerAncestral(c, y, g, eta, sNoise), x, grid);
            return;
        }
        requireRun(ctx, x, grid);
        requireNonNegative(eta, "eta");
        requireNonNegative(sNoise, "sNoise");
        for (int i = 0; i < grid.steps(); i++) {
            Level t = grid.level(i);
            Level s = grid.level(i + 1);
            ctx.evaluate(x, t);
            double sigmaS = s.sigmaVe();
            double up = Math.min(sigmaS, eta * sigmaS * Math.sqrt(oneMinusQ2(t, s)));
            double down = Math.sqrt((sigmaS - up) * (sigmaS + up));
            double r = down * t.alpha() / t.sigma();                                             // σ_down/σ̃_t
            ctx.update(Update.denoised(s.alpha() * down / t.sigma(), s.alpha() * (1 - r))
                    .withNoise(s.alpha() * up * sNoise, i + 1), x, x, false);
            ctx.afterStep(x, grid, i + 1);
        }
    }

    /**
     * Heun's second-order method (Karras et al. 2022, Algorithm 1; with churn Algorithm 2), on
     * {@code dx̃/dσ̃ = (x̃ − D)/σ̃} in scaled coordinates {@code x̃ = x/c}, {@code σ̃ = σ/c}:
     * <pre>
     *   [churn: σ̂ = σ_VE(1 + γ),  noise added up to the level of σ̂, evaluate there]
     *   x' = x̃ + h·d,  d = (x̃ − D)/σ̃_t,  h = σ̃_s − σ̃_t                 (Euler; final step when σ_s = 0)
     *   x̃_s = x̃ + (h/2)(d + d'),  d' = (x' − D(x', σ̃_s))/σ̃_s            (trapezoidal correction)
     * </pre>
     * The scale is {@code c = α + σ}, which maps any schedule onto the rectified flow of the same signal-to-noise
     * ratios: {@code x̃ = (1 − τ)·x0 + τ·ε} with {@code τ = σ̃ = σ/(α + σ) ∈ [0, 1]} and {@code d = (x̃ − D)/τ} the
     * flow's velocity (on a rectified flow {@code c = 1}: diffusers' {@code FlowMatchHeunDiscreteScheduler}, ComfyUI's
     * flow sampling). Karras et al. and k-diffusion's {@code sample_heun} step in {@code σ_VE} instead ({@code c = α});
     * Euler's step is the same in every such coordinate (DDIM), Heun's trapezoid is not. Measured against the exact
     * PF-ODE solution for Gaussian data on EDM's Karras grid (σ 80 → 0.002, ρ = 7, then 0): RMS error 0.029 / 0.0062 /
     * 0.0015 at 8 / 16 / 32 steps in {@code τ}, 0.28 / 0.055 / 0.012 in {@code σ_VE}, and 0.37 instead of 45 at 2
     * steps (the VE form's first trapezoid spans σ 80 → 0.002 and blows up; on grids starting near {@code α = 0} it
     * spans {@code σ_VE} from ~1000 down: a Fashion-MNIST flow DiT at 8 steps put 13 % of its pixels beyond ±2,
     * v-prediction cosine and VP models at 2 steps gave samples of standard deviation 150–650). In {@code τ} pure
     * noise ({@code α = 0}, {@code τ = 1}) is a valid start too.
     * Two fused passes per step (each after one model evaluation), the first saving {@code D} as history; in
     * {@code x_t} form the correction is
     * {@code x_s = (c_s/c_t)(1 + h/2σ̃_t)·x − c_s h/(2σ̃_t)·D + h/(2σ̃_s)·x'_t − c_s h/(2σ̃_s)·D'}.
     * Churn adds one noise pass per churned step.
     *
     * @param ctx  the model, guidance, noise seeds and fused ops
     * @param x    {@code [B, ...]} F32 contiguous: the state at {@code grid.first()} in, at {@code grid.last()} out
     * @param grid the levels, noisiest first
     * @param churn the stochastic churn ({@link Churn#NONE}: Algorithm 1)
     * @throws NullPointerException     for a null argument
     * @throws IllegalArgumentException when the model's prediction cannot be converted at a level (an
     *                                  {@code EPSILON} model at {@code α = 0}: start the grid below pure noise)
     * @throws IllegalStateException    for a churned step when the context has no {@link NoiseSeeds}; see the class
     *                                  notes for the exceptions of every body
     */
    public static void heun(SamplerContext ctx, Tensor x, SamplingGrid grid, Churn churn) {
        if (ctx != null && !ctx.sampling()) {          // a direct call: through sample() (see SamplerContext.sampling)
            ctx.sample((c, y, g) -> heun(c, y, g, churn), x, grid);
            return;
        }
        requireRun(ctx, x, grid);
        Objects.requireNonNull(churn, "churn");
        Tensor xNext = ctx.scratch(0, x);
        int n = grid.steps();
        double sigmaVeMax = grid.schedule().sigmaVe(1.0);
        for (int i = 0; i < n; i++) {
            Level t = grid.level(i);
            Level s = grid.level(i + 1);
            double gamma = churn.gamma(t.sigmaVe(), n);
            double sigmaHat = Math.min(t.sigmaVe() * (1 + gamma), sigmaVeMax);
            if (sigmaHat > t.sigmaVe()) {                                                     // Alg. 2, lines 5–6
                Level hat = grid.levelAtSigmaVe(sigmaHat);
                double added = Math.sqrt((sigmaHat - t.sigmaVe()) * (sigmaHat + t.sigmaVe()));
                ctx.addNoise(x, hat.alpha() / t.alpha(), hat.alpha() * added * churn.sNoise(), i + 1);
                t = hat;
            }
            ctx.evaluate(x, t);
            Update euler = eulerUpdate(t, s);                                                 // line 8
            if (s.sigma() == 0) {                                                            // line 9: last step
                ctx.update(euler, x, x, false);
                ctx.afterStep(x, grid, i + 1);
                continue;
            }
            ctx.update(euler, x, xNext, true);
            ctx.evaluate(xNext, s);                                                          // line 10
            double ct = t.alpha() + t.sigma();                                                // c = α + σ
            double cs = s.alpha() + s.sigma();
            double h = s.sigma() / cs - t.sigma() / ct;                                      // σ̃_s − σ̃_t
            double ht = h / (2 * (t.sigma() / ct));
            double hs = h / (2 * (s.sigma() / cs));
            ctx.update(new Update(Prediction.SAMPLE, cs / ct * (1 + ht), hs,
                    -cs * hs, -cs * ht, 0, -1), x, x, false);                                // line 11
            ctx.afterStep(x, grid, i + 1);
        }
    }

    /**
     * DPM-Solver++(2M) (Lu et al. 2022b, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic
     * Models", Algorithm 2), the multistep second-order solver in data prediction:
     * <pre>
     *   r = h_{i−1}/h_i,   D' = (1 + 1/(2r))·D_i − 1/(2r)·D_{i−1}     (D' = D_i on the first and the final step)
     *   x_s = (σ_s/σ_t)·x_t − α_s(e^{−h} − 1)·D'
     * </pre>
     * One fused pass per step, reading and rewriting the history {@code D}. The final step is first order, so
     * stepping to {@code σ = 0} returns {@code α_s·D} (the denoised prediction at {@code α_s = 1}) exactly.
     *
     * @param ctx  the model, guidance, noise seeds and fused ops
     * @param x    {@code [B, ...]} F32 contiguous: the state at {@code grid.first()} in, at {@code grid.last()} out
     * @param grid the levels, noisiest first
     * @throws NullPointerException     for a null argument
     * @throws IllegalArgumentException as every body does (class notes)
     */
    public static void dpmSolverPp2m(SamplerContext ctx, Tensor x, SamplingGrid grid) {
        if (ctx != null && !ctx.sampling()) {          // a direct call: through sample() (see SamplerContext.sampling)
            ctx.sample((c, y, g) -> dpmSolverPp2m(c, y, g), x, grid);
            return;
        }
        dpmSolverPp2mSde(ctx, x, grid, 0, 0);
    }

    /**
     * DPM-Solver++(2M) SDE, as k-diffusion's {@code sample_dpmpp_2m_sde} ({@code solver_type="midpoint"}) computes
     * it; with {@code η = 0} exactly DPM-Solver++(2M) (Lu et al. 2022b, Algorithm 2). The {@code η}/{@code s_noise}
     * form is taken from that reference code, not from an equation of a paper (Algorithms 1–2 of DPM-Solver++ are
     * ODE solvers). At {@code η = 1} it is the second-order {@code algorithm_type="sde-dpmsolver++"}
     * update of diffusers' {@code DPMSolverMultistepScheduler}:
     * <pre>
     *   x_s = (σ_s/σ_t)e^{−ηh}·x_t + α_s(1 − e^{−(1+η)h})·D' + σ_s√(1 − e^{−2ηh})·s_noise·z
     * </pre>
     * with {@code D'} as in {@link #dpmSolverPp2m} (first order on the first and final step).
     *
     * @param ctx  the model, guidance, noise seeds and fused ops
     * @param x    {@code [B, ...]} F32 contiguous: the state at {@code grid.first()} in, at {@code grid.last()} out
     * @param grid the levels, noisiest first
     * @param eta    {@code η ≥ 0}, finite (0: DPM-Solver++(2M))
     * @param sNoise {@code s_noise ≥ 0}, finite
     * @throws NullPointerException     for a null argument
     * @throws IllegalArgumentException for a negative or non-finite {@code η} or {@code s_noise}
     * @throws IllegalStateException    for {@code η > 0} when the context has no {@link NoiseSeeds}; see the class
     *                                  notes for the exceptions of every body
     */
    public static void dpmSolverPp2mSde(SamplerContext ctx, Tensor x, SamplingGrid grid, double eta, double sNoise) {
        if (ctx != null && !ctx.sampling()) {          // a direct call: through sample() (see SamplerContext.sampling)
            ctx.sample((c, y, g) -> dpmSolverPp2mSde(c, y, g, eta, sNoise), x, grid);
            return;
        }
        requireRun(ctx, x, grid);
        requireNonNegative(eta, "eta");
        requireNonNegative(sNoise, "sNoise");
        int n = grid.steps();
        double hLast = Double.NaN;
        for (int i = 0; i < n; i++) {
            Level t = grid.level(i);
            Level s = grid.level(i + 1);
            ctx.evaluate(x, t);
            double h = s.halfLogSnr() - t.halfLogSnr();
            double etaH = eta == 0 ? 0 : eta * h;
            double decay = s.sigma() == 0 ? 0 : s.sigma() / t.sigma() * Math.exp(-etaH);
            double phi = -Math.expm1(-h - etaH);                                              // 1 − e^{−(1+η)h}
            double k = (i == 0 || i == n - 1) ? 0 : h / (2 * hLast);                          // 1/(2r)
            double noise = s.sigma() * Math.sqrt(-Math.expm1(-2 * etaH)) * sNoise;
            ctx.update(Update.denoised(decay, s.alpha() * phi * (1 + k)).withHistory(-s.alpha() * phi * k)
                    .withNoise(noise, i + 1), x, x, i < n - 1);
            ctx.afterStep(x, grid, i + 1);
            hLast = h;
        }
    }

    /**
     * DPM-Solver++(3M) SDE, as k-diffusion's {@code sample_dpmpp_3m_sde} computes it; with {@code η = 0} the
     * deterministic third-order multistep update of diffusers' {@code DPMSolverMultistepScheduler}
     * ({@code algorithm_type="dpmsolver++"}, {@code solver_order=3}). The formula is taken from that reference code, not
     * from an equation of a paper: the DPM-Solver++ paper (Lu et al. 2022b) states its multistep algorithm at second
     * order (Algorithm 2); this is the same data-prediction exponential integrator one order higher. With {@code h_η = (1+η)h},
     * {@code r0 = h_{i−1}/h}, {@code r1 = h_{i−2}/h}:
     * <pre>
     *   d1₀ = (D_i − D_{i−1})/r0,  d1₁ = (D_{i−1} − D_{i−2})/r1
     *   d1 = d1₀ + (d1₀ − d1₁)·r0/(r0 + r1),  d2 = (d1₀ − d1₁)/(r0 + r1)
     *   φ2 = (e^{−h_η} − 1)/h_η + 1,  φ3 = φ2/h_η − 1/2
     *   x_s = (σ_s/σ_t)e^{−ηh}·x_t + α_s(1 − e^{−h_η})·D_i + α_s(φ2·d1 − φ3·d2) + σ_s√(1 − e^{−2ηh})·s_noise·z
     * </pre>
     * second order ({@code φ2·d1₀} only) on the second step, first order on the first and into {@code σ = 0}. One
     * fused pass per step with {@code D_{i−1}} as the history, plus a copy and an axpy for {@code D_{i−2}} (scratch
     * slots 0 and 1).
     *
     * <p>The steps are third order; with the first-order first step the global order measured 2.2–2.7 on Gaussian
     * data. Large {@code η} diverges as k-diffusion's does (keep {@code η ≤ 1}, its default). On coarse grids the
     * third-order extrapolation is unstable: with 4–8 Karras steps on a two-component Gaussian
     * mixture its covariance errors were 2–25 times DPM-Solver++(2M)'s (diffusers' lower-order second-to-last step
     * did not cure it); from about 10 steps on it is the more accurate of the two.
     *
     * @param ctx  the model, guidance, noise seeds and fused ops
     * @param x    {@code [B, ...]} F32 contiguous: the state at {@code grid.first()} in, at {@code grid.last()} out
     * @param grid the levels, noisiest first
     * @param eta    {@code η ≥ 0}, finite (0: DPM-Solver++(3M))
     * @param sNoise {@code s_noise ≥ 0}, finite
     * @throws NullPointerException     for a null argument
     * @throws IllegalArgumentException for a negative or non-finite {@code η} or {@code s_noise}
     * @throws IllegalStateException    for {@code η > 0} when the context has no {@link NoiseSeeds}; see the class
     *                                  notes for the exceptions of every body
     */
    public static void dpmSolverPp3mSde(SamplerContext ctx, Tensor x, SamplingGrid grid, double eta, double sNoise) {
        if (ctx != null && !ctx.sampling()) {          // a direct call: through sample() (see SamplerContext.sampling)
            ctx.sample((c, y, g) -> dpmSolverPp3mSde(c, y, g, eta, sNoise), x, grid);
            return;
        }
        requireRun(ctx, x, grid);
        requireNonNegative(eta, "eta");
        requireNonNegative(sNoise, "sNoise");
        int n = grid.steps();
        Tensor older = ctx.scratch(0, x);                       // D_{i−2}
        Tensor spare = ctx.scratch(1, x);
        double h1 = Double.NaN;
        double h2 = Double.NaN;
        for (int i = 0; i < n; i++) {
            Level t = grid.level(i);
            Level s = grid.level(i + 1);
            ctx.evaluate(x, t);
            double h = s.halfLogSnr() - t.halfLogSnr();
            double hEta = eta == 0 ? h : (1 + eta) * h;
            boolean last = s.sigma() == 0;
            double decay = last ? 0 : s.sigma() / t.sigma() * (eta == 0 ? 1 : Math.exp(-eta * h));  // α_t = 0: h = ∞
            double phi1 = -Math.expm1(-hEta);                                                  // 1 − e^{−h_η}
            double noise = last || eta == 0 ? 0 : s.sigma() * Math.sqrt(-Math.expm1(-2 * eta * h)) * sNoise;
            double cD = phi1;
            double cD1 = 0;
            double cD2 = 0;
            int order = last ? 1 : Math.min(i + 1, 3);
            if (order >= 2) {
                double phi2 = Math.expm1(-hEta) / hEta + 1;
                double r0 = h1 / h;
                if (order == 2) {
                    cD += phi2 / r0;
                    cD1 -= phi2 / r0;
                } else {
                    double phi3 = phi2 / hEta - 0.5;
                    double r1 = h2 / h;
                    double c = (phi2 * r0 - phi3) / (r0 + r1);                    // coefficient of (d1₀ − d1₁)
                    cD += (phi2 + c) / r0;
                    cD1 -= (phi2 + c) / r0 + c / r1;
                    cD2 += c / r1;
                }
            }
            if (order >= 2) {
                ctx.backend().copy(ctx.history(), spare);                        // D_{i−1}, overwritten by the update
            }
            Update u = Update.denoised(decay, s.alpha() * cD).withNoise(noise, i + 1);
            if (cD1 != 0) {
                u = u.withHistory(s.alpha() * cD1);
            }
            ctx.update(u, x, x, !last);
            if (cD2 != 0) {
                ctx.backend().axpby(1f, x, (float) (s.alpha() * cD2), older, x);
                ctx.requireFiniteState(x);
            }
            ctx.afterStep(x, grid, i + 1);
            Tensor swap = older;                                                  // D_{i−1} becomes D_{(i+1)−2}
            older = spare;
            spare = swap;
            h2 = h1;
            h1 = h;
        }
    }

    /**
     * UniPC (Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector Framework for Fast Sampling of Diffusion
     * Models", Algorithms 1–2 with {@code B(h) = e^{−h} − 1}, their "bh2", in data prediction; diffusers'
     * {@code UniPCMultistepScheduler} with {@code solver_order=2}, {@code lower_order_final}): a second-order multistep
     * predictor (UniP-2, {@code ρ = 1/2}) and, after each model evaluation, the corrector UniC, which reuses that
     * evaluation to raise the order by one at no extra model call. With {@code h = λ_s − λ_t}, {@code φ1 = e^{−h} − 1},
     * {@code r = (λ_{t−1} − λ_t)/h}, {@code D1 = (D_{t−1} − D_t)/r}:
     * <pre>
     *   predictor:  x̂_s = (σ_s/σ_t)·x_t − α_s φ1·D_t − α_s B(h)·ρ·D1                 (first order: no D1 term)
     *   corrector:  x_s = (σ_s/σ_t)·x_t − α_s φ1·D_t − α_s B(h)·(ρ0·D1 + ρ1·(D(x̂_s) − D_t))
     * </pre>
     * where the corrector's {@code (ρ0, ρ1)} solve {@code [[1, 1], [r, 1]]·ρ = (b1, b2)},
     * {@code b_k = k!·φ_{k+1}(h)/B(h)} with {@code φ_2 = φ1/(−h) − 1}, {@code φ_3 = φ_2/(−h) − 1/2} (the paper's
     * eq. 8 with {@code p = 2}); at order 1, {@code ρ1 = 1/2}. The first step is first order, and so is the last
     * (into {@code σ = 0}: {@code x = α·D}). The predicted state {@code x̂} is what the model sees and what
     * {@link SamplerContext#afterStep} is told of; the corrected state is not reported again.
     *
     * @param ctx  the model, guidance, noise seeds and fused ops
     * @param x    {@code [B, ...]} F32 contiguous: the state at {@code grid.first()} in, at {@code grid.last()} out
     * @param grid the levels, noisiest first
     * @throws NullPointerException     for a null argument
     * @throws IllegalArgumentException as every body does (class notes)
     */
    public static void uniPc(SamplerContext ctx, Tensor x, SamplingGrid grid) {
        if (ctx != null && !ctx.sampling()) {          // a direct call: through sample() (see SamplerContext.sampling)
            ctx.sample((c, y, g) -> uniPc(c, y, g), x, grid);
            return;
        }
        requireRun(ctx, x, grid);
        int n = grid.steps();
        Tensor older = ctx.scratch(0, x);                                 // D_{i−2}
        Tensor[] pred = {ctx.scratch(2, x), ctx.scratch(3, x)};          // predicted states, used alternately
        Tensor evaluated = x;
        int lastOrder = 0;
        for (int i = 0; i < n; i++) {
            Level t = grid.level(i);
            Level s = grid.level(i + 1);
            ctx.evaluate(evaluated, t);
            if (i > 0) {                                                  // UniC: correct x at level i
                Level a = grid.level(i - 1);
                double h = t.halfLogSnr() - a.halfLogSnr();
                double phi1 = Math.expm1(-h);
                double bh = phi1;
                double cD;                                                // D_i, at the predicted state
                double cM0 = -t.alpha() * phi1;                           // D_{i−1}
                double cM1 = 0;                                           // D_{i−2}
                if (lastOrder == 1) {
                    cD = -0.5 * t.alpha() * bh;
                    cM0 += 0.5 * t.alpha() * bh;
                } else {
                    double r1 = (grid.level(i - 2).halfLogSnr() - a.halfLogSnr()) / h;
                    double phi2 = phi1 / -h - 1;
                    double b1 = phi2 / bh;
                    double b2 = (phi2 / -h - 0.5) * 2 / bh;
                    double rho0 = (b1 - b2) / (1 - r1);
                    double rho1 = b1 - rho0;
                    cD = -t.alpha() * bh * rho1;
                    cM0 += t.alpha() * bh * (rho0 / r1 + rho1);
                    cM1 = -t.alpha() * bh * rho0 / r1;
                }
                ctx.update(Update.denoised(t.sigma() / a.sigma(), cD).withHistory(cM0), x, x, false);
                if (cM1 != 0) {
                    ctx.backend().axpby(1f, x, (float) cM1, older, x);
                    ctx.requireFiniteState(x);
                }
                ctx.backend().copy(ctx.history(), older);                // D_{i−1}: the next corrector's D_{i−2}
            }
            boolean last = i == n - 1;
            int order = (i == 0 || last) ? 1 : 2;
            double h = s.halfLogSnr() - t.halfLogSnr();
            double phi1 = s.sigma() == 0 ? -1 : Math.expm1(-h);
            double decay = s.sigma() == 0 ? 0 : s.sigma() / t.sigma();
            Update u = Update.denoised(decay, -s.alpha() * phi1);
            if (order == 2) {
                double r1 = (grid.level(i - 1).halfLogSnr() - t.halfLogSnr()) / h;
                double bh = phi1;
                u = Update.denoised(decay, -s.alpha() * phi1 + s.alpha() * bh * 0.5 / r1)
                        .withHistory(-s.alpha() * bh * 0.5 / r1);
            }
            Tensor out = last ? x : pred[evaluated == pred[0] ? 1 : 0];
            ctx.update(u, x, out, !last);
            ctx.afterStep(out, grid, i + 1);
            evaluated = out;
            lastOrder = order;
        }
    }

    /**
     * Flow-matching Euler (Liu et al. 2022, "Flow Straight and Fast", eq. 1; Lipman et al. 2023; the SD3 / Flux
     * sampler): {@code x_s = x_t + (σ_s − σ_t)·u(x_t, t)} with the velocity {@code u = ε − x0 = dx/dσ} on the path
     * {@code α = 1 − σ}.
     *
     * @param ctx  the model, guidance, noise seeds and fused ops
     * @param x    {@code [B, ...]} F32 contiguous: the state at {@code grid.first()} in, at {@code grid.last()} out
     * @param grid the levels, noisiest first
     * @throws NullPointerException     for a null argument
     * @throws IllegalArgumentException for a grid that is not a rectified-flow path ({@code α + σ ≠ 1} at a level)
     */
    public static void flowEuler(SamplerContext ctx, Tensor x, SamplingGrid grid) {
        if (ctx != null && !ctx.sampling()) {          // a direct call: through sample() (see SamplerContext.sampling)
            ctx.sample((c, y, g) -> flowEuler(c, y, g), x, grid);
            return;
        }
        requireRun(ctx, x, grid);
        requireFlowGrid(grid);
        for (int i = 0; i < grid.steps(); i++) {
            Level t = grid.level(i);
            Level s = grid.level(i + 1);
            ctx.evaluate(x, t);
            ctx.update(Update.velocity(1, s.sigma() - t.sigma()), x, x, false);
            ctx.afterStep(x, grid, i + 1);
        }
    }

    /**
     * Flow-matching explicit midpoint rule, the second-order Runge–Kutta method of Runge (1895) (e.g. Hairer,
     * Nørsett &amp; Wanner, "Solving Ordinary Differential Equations I", §II.1), on {@code dx/dσ = u} along the
     * rectified-flow path:
     * <pre>
     *   x_m = x_t + (Δ/2)·u(x_t, σ_t),   x_s = x_t + Δ·u(x_m, σ_t + Δ/2),   Δ = σ_s − σ_t
     * </pre>
     *
     * @throws IllegalArgumentException for a grid that is not a rectified-flow path
     */
    public static void flowMidpoint(SamplerContext ctx, Tensor x, SamplingGrid grid) {
        if (ctx != null && !ctx.sampling()) {          // a direct call: through sample() (see SamplerContext.sampling)
            ctx.sample((c, y, g) -> flowMidpoint(c, y, g), x, grid);
            return;
        }
        requireRun(ctx, x, grid);
        requireFlowGrid(grid);
        Tensor mid = ctx.scratch(0, x);
        for (int i = 0; i < grid.steps(); i++) {
            Level t = grid.level(i);
            Level s = grid.level(i + 1);
            double delta = s.sigma() - t.sigma();
            ctx.evaluate(x, t);
            ctx.update(Update.velocity(1, delta / 2), x, mid, false);
            ctx.evaluate(mid, grid.levelAtFlowSigma(0.5 * (t.sigma() + s.sigma())));
            ctx.update(Update.velocity(1, delta), x, x, false);
            ctx.afterStep(x, grid, i + 1);
        }
    }

    // ================================================================ helpers

    /** Euler in {@code σ̃}: {@code x_s = (σ_s/σ_t)x + α_s(1 − q)D}. */
    private static Update eulerUpdate(Level t, Level s) {
        return Update.denoised(s.sigma() / t.sigma(), s.alpha() * (1 - t.ratioTo(s)));
    }

    /** {@code 1 − q² = 1 − e^{−2h}}, accurate for small steps; 1 into clean data or out of zero SNR. */
    static double oneMinusQ2(Level t, Level s) {
        return -Math.expm1(-2 * (s.halfLogSnr() - t.halfLogSnr()));
    }

    private static void requireFlowGrid(SamplingGrid grid) {
        for (int i = 0; i < grid.size(); i++) {
            Level l = grid.level(i);
            if (!(Math.abs(l.alpha() + l.sigma() - 1) <= 1e-9)) {
                throw new IllegalArgumentException("flow samplers need a rectified-flow grid (alpha + sigma = 1), but"
                        + " level " + i + " is " + l + "; build it with SamplingGrid.ofFlowSigmas");
            }
        }
    }

    /** The arguments every algorithm body needs: none may be null. */
    private static void requireRun(SamplerContext ctx, Tensor x, SamplingGrid grid) {
        Objects.requireNonNull(ctx, "ctx");
        Objects.requireNonNull(x, "x");
        Objects.requireNonNull(grid, "grid");
    }

    /** RePaint's {@code U} and {@code j}, each in {@code [1, 1000]} ({@code j = 0} would never leave a stretch). */
    private static void requireRepaint(int resamplings, int jumpLength) {
        if (resamplings < 1 || resamplings > 1000) {
            throw new IllegalArgumentException("RePaint needs resamplings in [1, 1000], got " + resamplings);
        }
        if (jumpLength < 1 || jumpLength > 1000) {
            throw new IllegalArgumentException("RePaint needs a jump length in [1, 1000], got " + jumpLength);
        }
    }

    private static void requireNonNegative(double v, String name) {
        if (!(v >= 0 && v < Double.POSITIVE_INFINITY)) {
            throw new IllegalArgumentException(name + " must be finite and >= 0, got " + v);
        }
    }
}
