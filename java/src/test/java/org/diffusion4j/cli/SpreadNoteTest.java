package org.diffusion4j.cli;

import org.diffusion4j.schedule.Prediction;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Sampling#spreadNote}: standardised vector samples (the data's std is 1 per feature) that spread more than
 * three times wider in some feature get a note naming the feature and the spread, with the eps-prediction cause
 * when that is the model's prediction (a new-user trial sampled an eps model at std 9.4 against the data's 1.6).
 */
class SpreadNoteTest {

    private static float[] gaussian(int n, int d, double[] std, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n * d];
        for (int i = 0; i < n; i++) {
            for (int f = 0; f < d; f++) {
                x[i * d + f] = (float) (0.3 + std[f] * r.nextGaussian());
            }
        }
        return x;
    }

    @Test
    void speaksOnlyWhenAFeatureIsMuchWiderThanTheData() {
        float[] fine = gaussian(400, 3, new double[] {1.0, 1.4, 0.5}, 1);
        assertNull(Sampling.spreadNote(fine, 3, 400, Prediction.EPSILON, "dpmpp-2m", 1));
        float[] wide = gaussian(400, 3, new double[] {1.0, 5.9, 0.5}, 2);
        String note = Sampling.spreadNote(wide, 3, 400, Prediction.EPSILON, "dpmpp-2m", 1);
        assertNotNull(note);
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("spread ([0-9.]+) times").matcher(note);
        assertTrue(m.find(), note);
        double spread = Double.parseDouble(m.group(1));
        assertTrue(spread > 5.4 && spread < 6.4, "the sample std of feature 1 (5.9 drawn): " + note);
        assertTrue(note.contains("feature 1") && note.contains("eps-prediction") && note.contains("dpmpp-2m"), note);
        String flow = Sampling.spreadNote(wide, 3, 400, Prediction.VELOCITY, "flow-midpoint", 1);
        assertNotNull(flow);
        assertTrue(!flow.contains("eps-prediction"), flow);
        assertNull(Sampling.spreadNote(wide, 3, 10, Prediction.EPSILON, "dpmpp-2m", 1), "too few samples to tell");
        // an adversarial trial: the note recommended ddpm to a ddpm run, and blamed training for guidance 1e9
        String ddpm = Sampling.spreadNote(wide, 3, 400, Prediction.EPSILON, "ddpm", 1);
        assertTrue(ddpm.contains("eps-prediction") && !ddpm.contains("--sampler ddpm"), ddpm);
        String guided = Sampling.spreadNote(wide, 3, 400, Prediction.VELOCITY, "flow-midpoint", 1e9);
        assertTrue(guided.contains("guidance 1.00e+09") && !guided.contains("undertrained"), guided);
    }
}
