package org.diffusion4j.metrics;

import java.util.Objects;
import java.util.stream.IntStream;

/**
 * The {@code k}-nearest-neighbour classifier (Cover and Hart 1967, IEEE Trans. Inf. Theory 13(1)): a point gets the
 * class most frequent among its {@code k} nearest labelled reference points (Euclidean distance, in float64).
 * {@code eval} uses it on labelled vectors the way it uses the trained classifier on images: the accuracy of
 * class-conditional samples against the class they were drawn for, beside the accuracy on held-out real data.
 *
 * <p>Exact and deterministic: every distance is computed ({@code O(N M D)} for {@code N} queries, {@code M} reference
 * points); a tie in distance goes to the reference point of lower index, a tie in votes to the class whose nearest
 * member among the {@code k} is nearest. Queries run in parallel (the common fork-join pool).
 */
public final class NearestNeighbourClassifier {

    private final PointSet reference;
    private final int[] labels;
    private final int numClasses;
    private final int k;

    /**
     * A classifier over labelled reference points.
     *
     * @param reference  {@code M} points of dimension {@code D}
     * @param labels     class of each reference point, {@code [M]}, in {@code [0, numClasses)}
     * @param numClasses {@code K >= 1}
     * @param k          neighbours that vote, {@code 1 <= k <= M}
     * @throws IllegalArgumentException for a label count other than {@code M}, a label out of range (named with its
     *                                  position), {@code K < 1} or {@code k} outside {@code [1, M]}
     */
    public NearestNeighbourClassifier(PointSet reference, int[] labels, int numClasses, int k) {
        Objects.requireNonNull(reference, "reference");
        Objects.requireNonNull(labels, "labels");
        if (labels.length != reference.size()) {
            throw new IllegalArgumentException(labels.length + " labels for " + reference.size() + " reference points");
        }
        if (numClasses < 1) {
            throw new IllegalArgumentException("numClasses must be >= 1, got " + numClasses);
        }
        if (k < 1 || k > reference.size()) {
            throw new IllegalArgumentException("k must be in [1, " + reference.size() + "], got " + k);
        }
        for (int i = 0; i < labels.length; i++) {
            if (labels[i] < 0 || labels[i] >= numClasses) {
                throw new IllegalArgumentException("label " + labels[i] + " of reference point " + i
                        + " is outside [0, " + numClasses + ")");
            }
        }
        this.reference = reference;
        this.labels = labels.clone();
        this.numClasses = numClasses;
        this.k = k;
    }

    /** Number of neighbours that vote. */
    public int k() {
        return k;
    }

    /**
     * The predicted class of every query point, {@code [N]}.
     *
     * @throws IllegalArgumentException when the dimension differs from the reference's
     */
    public int[] predict(PointSet query) {
        PointSet.requireSameDim(query, reference);
        int d = reference.dim();
        int m = reference.size();
        float[] ref = reference.values();
        float[] q = query.values();
        int[] out = new int[query.size()];
        IntStream.range(0, query.size()).parallel().forEach(i -> {
            // the k nearest so far, sorted by (distance, index): insertion into a short array
            double[] dist = new double[k];
            int[] idx = new int[k];
            int have = 0;
            for (int j = 0; j < m; j++) {
                double s = 0;
                for (int c = 0; c < d; c++) {
                    double t = (double) q[i * d + c] - ref[j * d + c];
                    s += t * t;
                }
                if (have == k && !(s < dist[k - 1])) {
                    continue;                                      // not nearer than the k-th (equal: lower index wins)
                }
                int p = have == k ? k - 1 : have++;
                while (p > 0 && s < dist[p - 1]) {
                    dist[p] = dist[p - 1];
                    idx[p] = idx[p - 1];
                    p--;
                }
                dist[p] = s;
                idx[p] = j;
            }
            out[i] = vote(idx, have);
        });
        return out;
    }

    /** The class with most votes among {@code idx[0 .. n)} (sorted nearest first); a tie goes to the nearer class. */
    private int vote(int[] idx, int n) {
        int best = -1;
        int most = 0;
        for (int p = 0; p < n; p++) {                              // O(k^2) over the k voters: no [K] array
            int c = labels[idx[p]];
            int votes = 0;
            for (int q = 0; q < n; q++) {
                votes += labels[idx[q]] == c ? 1 : 0;
            }
            if (votes > most) {                                    // ties keep the nearer class (smaller p)
                most = votes;
                best = c;
            }
        }
        return best;
    }

    @Override
    public String toString() {
        return k + "-NN over " + reference.size() + " points in " + reference.dim() + " dims, " + numClasses
                + " classes";
    }
}
