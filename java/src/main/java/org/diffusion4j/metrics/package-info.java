/**
 * Sample-quality metrics: how close generated samples are to real data.
 *
 * <h2>Inputs</h2>
 * {@link org.diffusion4j.metrics.PointSet}: a validated host copy of {@code [N, D]} F32 points (from
 * {@code float[][]}, a flat array, or a tensor on any device, higher ranks flattened), named for error messages.
 *
 * <p><b>Argument order.</b> Every comparison takes the generated samples first and the real data second:
 * {@code (generated, reference)} in {@link org.diffusion4j.metrics.VectorMetrics},
 * {@code (generated, real)} in {@link org.diffusion4j.metrics.PrecisionRecall}, where swapping them swaps precision
 * and recall, {@code (generated, training, heldOut)} in {@link org.diffusion4j.metrics.NearestNeighbourRatio}, and
 * {@code (x, y)} = (generated, real) in the distances (MMD, energy, sliced Wasserstein, Fréchet, kernel distance),
 * which are symmetric: swapping their sets changes only rounding and which random subsets are drawn (the median
 * heuristic's pool, the kernel distance's subsets).
 *
 * <h2>Vectors (points, tabular rows, features)</h2>
 * <ul>
 *   <li>{@link org.diffusion4j.metrics.SlicedWasserstein}: {@code SW_p} over Philox-seeded random directions,
 *       exact 1-D {@code W_p} for unequal counts (Bonneel et al. 2015; Deshpande et al. 2018).</li>
 *   <li>{@link org.diffusion4j.metrics.Mmd}: MMD² with a Gaussian RBF kernel and the median-heuristic bandwidth,
 *       U- or V-statistic (Gretton et al. 2012).</li>
 *   <li>{@link org.diffusion4j.metrics.EnergyDistance}: energy distance, U- or V-statistic (Székely and Rizzo
 *       2013).</li>
 *   <li>{@link org.diffusion4j.metrics.VectorMetrics}: the three at once, as a
 *       {@link org.diffusion4j.metrics.MetricsReport} (JSON through Jackson).</li>
 * </ul>
 *
 * <h2>Images (through a classifier)</h2>
 * <ul>
 *   <li>{@link org.diffusion4j.metrics.ClassifierFeatures}: a small pixel classifier trained once on a dataset's
 *       training split (softmax cross-entropy, {@link org.diffusion4j.metrics.SoftmaxCrossEntropy}) and cached;
 *       its penultimate features feed the Fréchet distance, its predictions the label metrics.</li>
 *   <li>{@link org.diffusion4j.metrics.FrechetDistance}: the Fréchet distance between Gaussians fitted
 *       ({@link org.diffusion4j.metrics.GaussianFit}) to classifier features — a classifier-feature FD, not
 *       Inception FID — with the matrix square root through symmetric eigendecompositions (EJML).</li>
 *   <li>{@link org.diffusion4j.metrics.KernelDistance}: KID's estimator (Bińkowski et al. 2018): unbiased MMD² with
 *       the cubic polynomial kernel in the same features, averaged over subsets.</li>
 *   <li>{@link org.diffusion4j.metrics.LabelMetrics}: class coverage and accuracy of predicted labels.</li>
 *   <li>{@link org.diffusion4j.metrics.NearestNeighbourRatio}: a memorisation check, generated-to-training vs
 *       held-out-to-training nearest-neighbour distances.</li>
 * </ul>
 *
 * <h2>Fidelity and diversity (any features or vectors)</h2>
 * {@link org.diffusion4j.metrics.PrecisionRecall}: precision and recall from {@code k}-nearest-neighbour manifolds
 * (Kynkäänniemi et al. 2019), density and coverage (Naeem et al. 2020).
 *
 * <h2>Pairwise terms and cost</h2>
 * MMD, the energy distance and the nearest-neighbour distances need all {@code N M} pairs:
 * {@link org.diffusion4j.metrics.Pairwise#host()} runs them as float64 loops ({@code O(N M D)}, a reference),
 * {@link org.diffusion4j.metrics.Pairwise#on(org.diffusion4j.tensor.Backend)} as blocked GEMMs of centred,
 * augmented points through the backend (OpenBLAS or cuBLAS), with the kernel, square root or minimum applied
 * on the device and one float per tile row returned. The sliced Wasserstein distance
 * ({@code O(L (N + M) D + L N log N)}) and the Fréchet distance ({@code O(N D² + D³)}) run on the host in
 * float64. {@link org.diffusion4j.metrics.Pairwise#auto(org.diffusion4j.tensor.Backend)} picks the faster
 * engine by size.
 *
 * <h2>Measured at N = M = 10,000, D = 64</h2>
 * ({@code MetricsSpeed} in the tests, medians, 2026-11-30.) 2-core AMD EPYC build machine, CPU backend, shared
 * with other builds (load average 7–12, so upper bounds): MMD² (U, median heuristic) 6.8–9.6 s, energy distance
 * (U) 1.4–4.9 s, nearest-neighbour ratio (10,000 generated and held-out against 10,000 training) 1.5–1.9 s,
 * sliced {@code W_2} with 128 directions 0.24–0.27 s, Fréchet distance (two fits and the square root) 0.04–0.06 s;
 * on the same machine, later that day (other jobs running): precision, recall, density and coverage (four passes
 * of {@code 10^8} distances) 1.6 s, the kernel distance (100 subsets of 1000) 1.5 s.
 * NVIDIA H200 (cuBLAS FP32, same code through the CUDA backend): MMD² 0.070 s (mostly the host median
 * heuristic), energy distance 0.027 s, nearest-neighbour ratio 0.022 s.
 */
package org.diffusion4j.metrics;
