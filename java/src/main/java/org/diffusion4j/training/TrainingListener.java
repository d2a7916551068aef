package org.diffusion4j.training;

/**
 * Receives the {@link StepStats} of every {@link Trainer} step, on the training thread, after the step is complete
 * (parameters, optimizer, EMA and step counter all updated): a listener may save a checkpoint
 * ({@link Trainer#save}) or sample from the model. An exception thrown by a listener stops training and propagates
 * out of {@link Trainer#step()}/{@link Trainer#train(long)}; the step itself stays completed.
 */
@FunctionalInterface
public interface TrainingListener {

    /** Called once per completed step. */
    void onStep(StepStats stats);
}
