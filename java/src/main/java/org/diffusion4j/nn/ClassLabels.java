package org.diffusion4j.nn;

import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Shape;
import org.diffusion4j.tensor.Tensor;

/**
 * The class-label checks the conditional denoisers share ({@link DiT}, {@link MlpDenoiser}): labels in
 * {@code [0, K]} ({@code K} = the null class of classifier-free guidance) for a model with {@code K > 0} classes, none
 * for an unconditional one.
 */
final class ClassLabels {

    private ClassLabels() {
    }

    /**
     * Checks host labels; returns them (null for an unconditional model).
     *
     * @param model      the model's name for messages, e.g. "DiT"
     * @param numClasses {@code K}, 0 = unconditional
     * @param batch      the expected count, or {@code -1} for any
     * @throws IllegalArgumentException naming the problem: labels given to an unconditional model, missing for a
     *                                  conditional one, a wrong count or a label outside {@code [0, K]}
     */
    static int[] check(String model, int numClasses, int[] labels, long batch) {
        if (numClasses == 0) {
            if (labels != null) {
                throw new IllegalArgumentException("this " + model + " is unconditional (numClasses = 0); got "
                        + labels.length + " labels");
            }
            return null;
        }
        if (labels == null) {
            throw new IllegalArgumentException("this " + model + " is class-conditional (numClasses = " + numClasses
                    + "); labels are required");
        }
        if (batch >= 0 && labels.length != batch) {
            throw new IllegalArgumentException(labels.length + " labels for a batch of " + batch);
        }
        for (int b = 0; b < labels.length; b++) {
            if (labels[b] < 0 || labels[b] > numClasses) {
                throw new IllegalArgumentException("labels[" + b + "] = " + labels[b] + " is outside [0, "
                        + numClasses + "] (" + numClasses + " = null class)");
            }
        }
        return labels;
    }

    /**
     * The labels of a {@link org.diffusion4j.sampling.Denoiser} condition: I32 {@code [batch]} on {@code backend}
     * for a conditional model, null for an unconditional one; checked as {@link #check}.
     *
     * @throws IllegalArgumentException for a condition of the wrong kind, dtype, shape or values
     */
    static int[] read(String model, int numClasses, Backend backend, Tensor condition, int batch) {
        if (numClasses == 0) {
            if (condition != null) {
                throw new IllegalArgumentException("this " + model + " is unconditional; got condition " + condition);
            }
            return null;
        }
        if (condition == null) {
            throw new IllegalArgumentException("this " + model + " is class-conditional and was given no condition: "
                    + "it needs I32 [" + batch + "] labels in [0, " + numClasses + "] (" + numClasses + " = the null "
                    + "class; with guidance the unconditional input is such a tensor filled with " + numClasses + ")");
        }
        Shape.requireOperand("condition", condition, backend, DType.I32);
        if (condition.rank() != 1 || condition.shape(0) != batch) {
            throw new IllegalArgumentException("condition " + condition + " must be I32 [" + batch + "] labels");
        }
        return check(model, numClasses, condition.toIntArray(), batch);
    }
}
