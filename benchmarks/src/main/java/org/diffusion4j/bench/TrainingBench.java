package org.diffusion4j.bench;

import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.TimeUnit;

/**
 * One training step of the MLP denoiser and the two DiT configs of the models issue at batch
 * {@value Workloads#TRAIN_BATCH}, on the CPU backend: {@code impl = "trainer"} is the library's
 * {@link org.diffusion4j.training.Trainer#step()} ({@link Workloads.TrainerLoop}: batch drawing, label dropout,
 * forward noising, loss, backward, clipping, AdamW, EMA), {@code impl = "minimal"} the bare step that the PyTorch
 * comparison also runs ({@link Workloads.TrainLoop#step}: fused forward noising, forward, MSE gradient, backward,
 * AdamW). Primary result: steps/s; secondary {@code images} (images/s) and {@code flop} (approximate matrix
 * FLOP/s, {@link Workloads#forwardFlopsPerSample} × 3 per image), whose ratio to the in-run {@link GemmBench} rate is
 * the fraction of the GEMM floor the step reaches.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@State(Scope.Benchmark)
public class TrainingBench {

    @Param({"mlp", "ditA", "ditB"})
    public String model;

    @Param({"trainer", "minimal"})
    public String impl;

    AutoCloseable loop;
    Runnable step;
    java.util.function.DoubleSupplier loss;
    long flopsPerStep;

    /** Images and FLOPs done, reported per second. */
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    @State(Scope.Thread)
    public static class Counts {
        public long images;
        public long flop;
    }

    @Setup(Level.Trial)
    public void setUp() {
        long params;
        switch (impl) {
            case "trainer" -> {
                Workloads.TrainerLoop t = new Workloads.TrainerLoop(model, Workloads.TRAIN_BATCH);
                loop = t;
                step = t::step;
                loss = t::loss;
                params = t.model().module().parameterCount();
            }
            case "minimal" -> {
                Workloads.TrainLoop t = new Workloads.TrainLoop(model, Workloads.TRAIN_BATCH);
                loop = t;
                step = t::step;
                loss = t::loss;
                params = t.model().module().parameterCount();
            }
            default -> throw new IllegalArgumentException("impl must be trainer or minimal, got " + impl);
        }
        flopsPerStep = (long) (3 * Workloads.forwardFlopsPerSample(model) * Workloads.TRAIN_BATCH);
        step.run();
        System.out.println("\n[TrainingBench] " + model + " (" + params + " parameters, " + impl + "), batch "
                + Workloads.TRAIN_BATCH + ": ~" + flopsPerStep / 1e9 + " GFLOP per step; first loss "
                + loss.getAsDouble());
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        double last = loss.getAsDouble();
        loop.close();
        if (!Double.isFinite(last)) {
            throw new IllegalStateException("training diverged: loss " + last);
        }
    }

    @Benchmark
    public void trainStep(Counts c) {
        step.run();
        c.images += Workloads.TRAIN_BATCH;
        c.flop += flopsPerStep;
    }
}
