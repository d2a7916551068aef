package org.diffusion4j.bench;

import org.diffusion4j.sampling.Samplers;
import org.diffusion4j.sampling.SamplingGrid;
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
 * Sampling a class-conditional DiT ({@link Workloads.SampleLoop}: DPM-Solver++(2M), classifier-free guidance 4 as
 * one model call of batch 2·64 per step, fused sampler update) of {@value Workloads#SAMPLE_BATCH} images 28×28 on
 * the CPU backend: one mid-run step ({@code step}, ms per call) and a whole 50-step sampling including the initial
 * noise ({@code sample50}, seconds per call, single shot). The model is DiT config A by default.
 */
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@State(Scope.Benchmark)
public class SamplingBench {

    @Param({"ditA"})
    public String model;

    Workloads.SampleLoop loop;
    SamplingGrid oneStep;
    SamplingGrid fifty;

    @Setup(Level.Trial)
    public void setUp() {
        loop = new Workloads.SampleLoop(model, Workloads.SAMPLE_BATCH);
        SamplingGrid g = loop.grid(50);
        oneStep = SamplingGrid.of(g.schedule(), g.level(25), g.level(26));
        fifty = g;
        loop.ctx.initialNoise(loop.x, fifty);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        float[] x = loop.samples().toFloatArray();
        loop.close();
        for (float v : x) {
            if (!Float.isFinite(v)) {
                throw new IllegalStateException("sampling produced a non-finite value");
            }
        }
    }

    /** One DPM-Solver++(2M) step with guidance (one guided model call + the fused update). */
    @Benchmark
    @BenchmarkMode(Mode.AverageTime)
    @OutputTimeUnit(TimeUnit.MILLISECONDS)
    @Warmup(iterations = 2, time = 1)
    @Measurement(iterations = 3, time = 1)
    public void step() {
        loop.ctx.sample(Samplers.dpmSolverPp2m(), loop.x, oneStep);
    }

    /** 50 steps from fresh noise. */
    @Benchmark
    @BenchmarkMode(Mode.SingleShotTime)
    @OutputTimeUnit(TimeUnit.SECONDS)
    @Warmup(iterations = 1)
    @Measurement(iterations = 3)
    public void sample50() {
        loop.sample(fifty);
    }
}
