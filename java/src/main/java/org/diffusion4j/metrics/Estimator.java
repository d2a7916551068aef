package org.diffusion4j.metrics;

/**
 * How the within-set pair averages of a two-sample statistic (MMD², energy distance) are formed.
 *
 * <p>With {@code x [N, D]}, {@code y [M, D]} and a pair function {@code h}:
 * <ul>
 *   <li>{@link #U_STATISTIC}: {@code 1/(N(N−1)) Σ_{i≠j} h(x_i, x_j)} (likewise for {@code y}); the cross term
 *       {@code 1/(NM) Σ_ij h(x_i, y_j)}. Unbiased: its expectation is the population value, so it is
 *       {@code ≈ 0} on average for identical distributions and can be negative. Needs {@code N, M >= 2}.
 *       (MMD²_u of Gretton et al. 2012, JMLR 13, eq. 3.)</li>
 *   <li>{@link #V_STATISTIC}: {@code 1/N² Σ_ij h(x_i, x_j)}, the diagonal included. Biased (by {@code O(1/N)}),
 *       never negative for MMD² and the energy distance, exactly 0 for one set against itself.
 *       (MMD²_b of Gretton et al. 2012, eq. 5; the energy statistic {@code E_{n,m}} of Székely and Rizzo 2013,
 *       J. Stat. Plann. Inference 143, Sec. 2.)</li>
 * </ul>
 */
public enum Estimator {
    /** Unbiased: diagonal pairs excluded, {@code 1/(N(N−1))}. */
    U_STATISTIC,
    /** Biased, non-negative: diagonal pairs included, {@code 1/N²}. */
    V_STATISTIC
}
