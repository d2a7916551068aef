package org.diffusion4j.schedule;

/**
 * Rectified flow / flow matching with the straight path {@code x_t = (1 − t)·x0 + t·ε} (Liu et al. 2022, eq. 1;
 * Lipman et al. 2023; DESIGN.md §2), optionally with the SD3 timestep shift (Esser et al. 2024, "Scaling Rectified
 * Flow Transformers", eq. 23):
 * <pre>
 *   σ(t) = s·t / (1 + (s − 1)·t),      α(t) = 1 − σ(t) = (1 − t) / (1 + (s − 1)·t)
 * </pre>
 * {@code s = 1} is plain rectified flow ({@code α = 1 − t, σ = t}); {@code s > 1} spends more time at high noise
 * (SD3 uses {@code s = 3} at 1024²). The velocity target is {@code u = ε − x0} ({@link Prediction#VELOCITY});
 * it is {@code dx/dσ} along the path, so a sampler stepping in {@code σ} uses {@code u} unchanged for any shift.
 * Zero terminal SNR: {@code α(1) = 0}. Immutable.
 *
 * <p><b>Opposite convention.</b> Meta's {@code flow_matching} library (and some seed code) puts data at
 * {@code t = 1} and predicts {@code x0 − ε}; convert at the edge with {@link #tFromDataAtOne} and
 * {@link #velocityFromDataAtOne}, never silently.
 *
 * @param shift the SD3 shift {@code s > 0} (1 = none); for the resolution-dependent shift see
 *              {@link #forImageSeqLen(long)} and {@link FlowShift}
 */
public record RectifiedFlowSchedule(double shift) implements NoiseSchedule {

    /** Shifts outside {@code [MIN_SHIFT, MAX_SHIFT]} are refused: beyond them α and σ lose every bit of t. */
    public static final double MIN_SHIFT = 1e-6;
    /** See {@link #MIN_SHIFT}; SD3 uses 3, FLUX at most e^1.15 ≈ 3.2. */
    public static final double MAX_SHIFT = 1e6;

    /**
     * Validates the shift.
     *
     * @throws IllegalArgumentException unless {@code MIN_SHIFT ≤ shift ≤ MAX_SHIFT} (NaN refused)
     */
    public RectifiedFlowSchedule {
        if (!(shift >= MIN_SHIFT && shift <= MAX_SHIFT)) {
            throw new IllegalArgumentException("shift must be in [" + MIN_SHIFT + ", " + MAX_SHIFT + "], got " + shift);
        }
    }

    /** Plain rectified flow, {@code α = 1 − t}, {@code σ = t}. */
    public static RectifiedFlowSchedule unshifted() {
        return new RectifiedFlowSchedule(1.0);
    }

    /**
     * The resolution-dependent shift of Flux (Black Forest Labs, {@code flux/sampling.py}; Esser et al. 2024,
     * §5.3.2): {@code s = e^μ} with {@code μ = FlowShift.mu(imageSeqLen)} (the exponential time shift with
     * exponent 1 equals the SD3 shift with {@code s = e^μ}; see {@link FlowShift#timeShiftExponential}).
     *
     * @param imageSeqLen number of image tokens {@code ≥ 1}, e.g. {@code (H/16)·(W/16)} for Flux
     * @throws IllegalArgumentException for {@code imageSeqLen < 1}
     */
    public static RectifiedFlowSchedule forImageSeqLen(long imageSeqLen) {
        return new RectifiedFlowSchedule(Math.exp(FlowShift.mu(imageSeqLen)));
    }

    /**
     * {@inheritDoc}
     *
     * @throws IllegalArgumentException {@inheritDoc}
     */
    @Override
    public double alpha(double t) {
        NoiseSchedule.requireT(t);
        return (1.0 - t) / (1.0 + (shift - 1.0) * t);
    }

    /**
     * {@inheritDoc}
     *
     * @throws IllegalArgumentException {@inheritDoc}
     */
    @Override
    public double sigma(double t) {
        NoiseSchedule.requireT(t);
        return shift * t / (1.0 + (shift - 1.0) * t);
    }

    /** {@code λ = 2·(ln(1 − t) − ln s − ln t)}. */
    @Override
    public double logSnr(double t) {
        NoiseSchedule.requireT(t);
        return 2.0 * (Math.log1p(-t) - Math.log(shift) - Math.log(t));
    }

    /** Inverse log-SNR: {@code α/σ = (1 − t)/(s t) = e^{λ/2}}, so {@code t = sigmoid(−(λ/2 + ln s))}. */
    @Override
    public double tFromLogSnr(double lambda) {
        if (Double.isNaN(lambda)) {
            throw new IllegalArgumentException("logSnr is NaN");
        }
        return Snr.sigmoid(-(0.5 * lambda + Math.log(shift)));
    }

    /**
     * This library's time of a time in the data-at-one convention (Meta flow_matching): {@code 1 − t}.
     *
     * @param tDataAtOne a time in {@code [0, 1]} with {@code t = 1} data
     * @throws IllegalArgumentException for a time outside {@code [0, 1]} or NaN
     */
    public static double tFromDataAtOne(double tDataAtOne) {
        return 1.0 - NoiseSchedule.requireT(tDataAtOne);
    }

    /** Velocity {@code ε − x0} of a velocity in the data-at-one convention ({@code x0 − ε}): its negation. */
    public static double velocityFromDataAtOne(double velocityDataAtOne) {
        return -velocityDataAtOne;
    }
}
