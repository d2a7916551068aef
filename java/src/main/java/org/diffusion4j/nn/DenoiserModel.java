package org.diffusion4j.nn;

import org.diffusion4j.sampling.Denoiser;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

/**
 * A trainable denoiser of this library ({@link MlpDenoiser}, {@code DiT}): the contract between a model, the trainer
 * ({@code org.diffusion4j.training.Trainer}), checkpoints and the command-line tool.
 *
 * <p>A model is a {@link Module} (parameters by PyTorch state-dict name) with an explicit forward pass that saves
 * what its backward pass needs. It predicts in whatever {@link org.diffusion4j.schedule.Prediction} type it was
 * trained for; the model itself does not know which.
 *
 * <p><b>Time.</b> {@code t ∈ [0, 1]} in this library's convention ({@code t = 0} data); a model maps it to its own
 * embedding range (e.g. {@code 1000·t}, DiT's timestep range).
 *
 * <p><b>Labels.</b> Class-conditional models take {@code labels[b] ∈ [0, numClasses]}, where the value
 * {@code numClasses} is the learned null class used for classifier-free guidance; unconditional models take
 * {@code null}. Through {@link Denoiser#predict} the condition is an I32 tensor {@code [B]} of the same values.
 */
public interface DenoiserModel extends Denoiser {

    /** What {@link #forward} saved; {@link #out()} is the prediction, the shape of the input. */
    interface Pass {
        /** The prediction {@code [B, ...]} F32, the shape of the model input. */
        Tensor out();
    }

    /** The module tree whose parameters (and buffers) make up this model's state dict. */
    Module module();

    /** The shape of one sample without the batch dimension, e.g. {@code [D]} or {@code [C, H, W]}. */
    long[] sampleShape();

    /** The number of real classes, 0 for an unconditional model. */
    int numClasses();

    /**
     * Forward pass for training.
     *
     * @param scope  owner of the output and every saved activation
     * @param x      F32 contiguous {@code [B, sampleShape...]} on the model's backend
     * @param t      {@code B} model times in {@code [0, 1]} (host)
     * @param labels {@code B} labels in {@code [0, numClasses]} for a conditional model, {@code null} otherwise
     * @throws IllegalArgumentException on a shape mismatch, a non-finite time, a label out of range, or labels given
     *                                  to an unconditional model (or missing for a conditional one)
     */
    Pass forward(TensorScope scope, Tensor x, double[] t, int[] labels);

    /**
     * Backward pass: accumulates every parameter gradient for {@code dOut} (the gradient of the loss w.r.t.
     * {@link Pass#out()}, same shape). The input is not differentiated.
     *
     * @throws IllegalArgumentException when {@code pass} is not from this model or {@code dOut} has the wrong shape
     */
    void backward(TensorScope scope, Pass pass, Tensor dOut);
}
