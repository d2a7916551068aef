package org.diffusion4j.cli;

import picocli.CommandLine.Option;

/**
 * The sampling options beyond the sampler's name that {@code sample} and {@code eval} share (a picocli mixin):
 * {@code --threshold}, {@code --eta} and {@code --s-churn}.
 */
final class SamplerKnobs {

    @Option(names = "--threshold", defaultValue = "auto", description = Sampling.THRESHOLD_DESCRIPTION)
    String threshold;

    @Option(names = "--eta", description = Sampling.ETA_DESCRIPTION)
    Double eta;

    @Option(names = "--s-churn", description = Sampling.CHURN_DESCRIPTION)
    Double sChurn;

    /** The values given (or their defaults). */
    Sampling.Knobs knobs() {
        return new Sampling.Knobs(threshold, eta, sChurn);
    }
}
