package org.diffusion4j.nn;

/**
 * The float coefficients of one fused AdamW step ({@link NnOps#adamw}), computed on the host in float64 and rounded
 * once (see {@link NnMath} for the per-element update). Build with {@link #of}, the factory that derives the
 * coefficients from the hyper-parameters; the canonical constructor takes coefficients as they are and only checks
 * that the step can evaluate them (finite, in range, {@code eps} large enough to divide by).
 *
 * @param decay         {@code 1 − lr·λ}: decoupled weight decay as PyTorch's {@code torch.optim.AdamW} applies it,
 *                      with λ multiplied by the learning rate. Loshchilov &amp; Hutter 2019, Alg. 2 line 12, decays
 *                      by {@code η_t·λ} instead ({@code η_t} the schedule multiplier, not the step size α), so a
 *                      paper λ equals this λ times α; see {@link org.diffusion4j.optim.AdamW}
 * @param beta1         first-moment decay {@code β1}
 * @param oneMinusBeta1 {@code 1 − β1}
 * @param beta2         second-moment decay {@code β2}
 * @param oneMinusBeta2 {@code 1 − β2}
 * @param stepSize      {@code lr/(1 − β1^t)} (bias correction of the first moment)
 * @param invSqrtBc2    {@code 1/√(1 − β2^t)} (bias correction of the second moment)
 * @param eps           {@code ε} added to the corrected root second moment
 * @param gradScale     factor applied to every gradient before use (e.g. a clipping factor; 1 for none)
 */
public record AdamWStep(float decay, float beta1, float oneMinusBeta1, float beta2, float oneMinusBeta2,
                        float stepSize, float invSqrtBc2, float eps, float gradScale) {

    /**
     * Checks the coefficients: all finite, {@code beta1}, {@code beta2} and their complements in {@code [0, 1]},
     * {@code stepSize ≥ 0}, {@code invSqrtBc2 > 0}, {@code eps ≥} {@link Float#MIN_NORMAL} (the update divides by
     * {@code √v·invSqrtBc2 + eps}, with {@code v = 0} at a zero gradient) and {@code gradScale ≥ 0}.
     *
     * @throws IllegalArgumentException naming the bad coefficient and its value
     */
    public AdamWStep {
        requireFinite("decay", decay);
        requireUnit("beta1", beta1);
        requireUnit("oneMinusBeta1", oneMinusBeta1);
        requireUnit("beta2", beta2);
        requireUnit("oneMinusBeta2", oneMinusBeta2);
        requireFinite("stepSize", stepSize);
        if (!(stepSize >= 0)) {
            throw new IllegalArgumentException("AdamW stepSize must be >= 0, got " + stepSize);
        }
        requireFinite("invSqrtBc2", invSqrtBc2);
        if (!(invSqrtBc2 > 0)) {
            throw new IllegalArgumentException("AdamW invSqrtBc2 must be > 0, got " + invSqrtBc2);
        }
        requireFinite("eps", eps);
        if (!(eps >= Float.MIN_NORMAL)) {
            throw new IllegalArgumentException("AdamW eps must be >= " + Float.MIN_NORMAL
                    + " (the smallest normal float32; the step divides by sqrt(v)*invSqrtBc2 + eps), got " + eps);
        }
        requireFinite("gradScale", gradScale);
        if (!(gradScale >= 0)) {
            throw new IllegalArgumentException("AdamW gradScale must be >= 0, got " + gradScale);
        }
    }

    /**
     * Coefficients of step {@code t ≥ 1} (1-based, as in Kingma &amp; Ba 2015, Alg. 1).
     *
     * @param lr          learning rate {@code ≥ 0}, finite (scales both the Adam step and the weight decay)
     * @param beta1       in {@code [0, 1)}
     * @param beta2       in {@code [0, 1)}
     * @param eps         in {@code [}{@link Float#MIN_NORMAL}{@code , }{@link Float#MAX_VALUE}{@code ]} (the step
     *                    runs in float32)
     * @param weightDecay decoupled weight decay {@code λ ≥ 0}, finite, applied as {@code 1 − lr·λ} (PyTorch's
     *                    coupling with the learning rate, see {@link #decay()})
     * @param t           step number {@code ≥ 1}
     * @param gradScale   finite factor {@code ≥ 0} applied to gradients
     * @throws IllegalArgumentException naming the bad value, or when the step size {@code lr/(1 − β1^t)}, the decay
     *                                  factor or {@code gradScale} overflows float32
     */
    public static AdamWStep of(double lr, double beta1, double beta2, double eps, double weightDecay, long t,
                               double gradScale) {
        if (!(lr >= 0 && Double.isFinite(lr))) {
            throw new IllegalArgumentException("AdamW learning rate must be finite and >= 0, got " + lr);
        }
        if (!(beta1 >= 0 && beta1 < 1)) {
            throw new IllegalArgumentException("AdamW beta1 must be in [0, 1), got " + beta1);
        }
        if (!(beta2 >= 0 && beta2 < 1)) {
            throw new IllegalArgumentException("AdamW beta2 must be in [0, 1), got " + beta2);
        }
        if (!(eps > 0 && Double.isFinite(eps))) {
            throw new IllegalArgumentException("AdamW eps must be finite and > 0, got " + eps);
        }
        if (!(weightDecay >= 0 && Double.isFinite(weightDecay))) {
            throw new IllegalArgumentException("AdamW weight decay must be finite and >= 0, got " + weightDecay);
        }
        if (t < 1) {
            throw new IllegalArgumentException("AdamW step number must be >= 1, got " + t);
        }
        if (!(gradScale >= 0 && Double.isFinite(gradScale))) {
            throw new IllegalArgumentException("AdamW gradient scale must be finite and >= 0, got " + gradScale);
        }
        if (!(eps >= Float.MIN_NORMAL)) {
            throw new IllegalArgumentException("AdamW eps " + eps + " is below the smallest normal float32 ("
                    + Float.MIN_NORMAL + "); the step would divide by (nearly) zero");
        }
        if (!(eps <= Float.MAX_VALUE)) {
            throw new IllegalArgumentException("AdamW eps " + eps + " overflows float32");
        }
        double bc1 = 1.0 - Math.pow(beta1, t);
        double bc2 = 1.0 - Math.pow(beta2, t);
        double stepSize = lr / bc1;
        double decay = 1.0 - lr * weightDecay;
        if (!(stepSize <= Float.MAX_VALUE && Math.abs(decay) <= Float.MAX_VALUE && gradScale <= Float.MAX_VALUE)) {
            throw new IllegalArgumentException("AdamW learning rate " + lr + " (step size " + stepSize
                    + ", decay factor " + decay + ") or gradient scale " + gradScale + " overflows float32");
        }
        return new AdamWStep((float) decay, (float) beta1, (float) (1.0 - beta1), (float) beta2,
                (float) (1.0 - beta2), (float) stepSize, (float) (1.0 / Math.sqrt(bc2)), (float) eps,
                (float) gradScale);
    }

    private static void requireFinite(String name, float value) {
        if (!Float.isFinite(value)) {
            throw new IllegalArgumentException("AdamW " + name + " must be finite, got " + value);
        }
    }

    private static void requireUnit(String name, float value) {
        if (!(value >= 0 && value <= 1)) {
            throw new IllegalArgumentException("AdamW " + name + " must be in [0, 1], got " + value);
        }
    }
}
