package org.diffusion4j.cuda;

import org.diffusion4j.sampling.DiffusionOps;
import org.diffusion4j.sampling.FusedMath;
import org.diffusion4j.sampling.FusedStep;
import org.diffusion4j.sampling.NoiseSeeds;
import org.diffusion4j.sampling.NoisingCoefficients;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.Tensor;

import java.util.Objects;

/**
 * The fused diffusion ops ({@link DiffusionOps}) as CUDA kernels ({@code native/src/diffusion.cu}): forward
 * noising, noise injection and the sampler step are each one kernel over the batch; a guided step with rescale
 * {@code φ ≠ 0} runs a per-sample statistics kernel first (Lin et al. 2023, "Common Diffusion Noise Schedules and
 * Sample Steps are Flawed", §3.4). The per-element arithmetic is {@link FusedMath}'s, evaluated with the same
 * float operations in the same order (never contracted into FMAs), and the noise is in-kernel Philox
 * ({@link NoiseSeeds}), so results are <b>bitwise equal to {@link org.diffusion4j.cpu.CpuDiffusionOps}</b>
 * except the rescale factor {@code f_b}, whose {@code double} sums are added in a different (fixed,
 * deterministic) order and may therefore differ from the CPU's in the last bit in rare cases.
 *
 * <p>Per-sample coefficients (computed on the host in {@code double}, rounded to {@code float}) and noise seeds
 * travel in the kernel parameters: no staging copy, no synchronisation; ops are queued on the backend's stream.
 * Bytes moved per element: forward noising 4 read + 8 written (+4 with {@code eps}); step 4 per operand read
 * ({@code cond}, {@code uncond}, {@code x}, {@code xIn} when distinct, {@code hist}; 8 more for the rescale
 * statistics) + 4 per output; noise injection 4 read (where {@code scale ≠ 0}) + 4 written.
 *
 * <p>Thread-safe. The rescale workspace (a few bytes per 16 Ki elements per sample) belongs to this instance and
 * is freed by {@link #close()}; the backend stays open.
 */
public final class CudaDiffusionOps implements DiffusionOps {

    private final CudaBackend backend;
    private final int device;
    private final Object workspaceLock = new Object();
    private long workspace;      // device pointer, guarded by workspaceLock
    private long workspaceBytes;
    private boolean closed;

    /**
     * Fused ops on {@code backend}'s tensors.
     *
     * @throws IllegalArgumentException when {@code backend} is not a {@link CudaBackend}
     */
    public CudaDiffusionOps(Backend backend) {
        Objects.requireNonNull(backend, "backend");
        if (!(backend instanceof CudaBackend cuda)) {
            throw new IllegalArgumentException("CudaDiffusionOps needs a CudaBackend, got " + backend.name() + " on "
                    + backend.device());
        }
        this.backend = cuda;
        this.device = cuda.deviceInfo().index();
    }

    @Override
    public Backend backend() {
        return backend;
    }

    @Override
    public String toString() {
        return "CudaDiffusionOps[" + backend.name() + "]";
    }

    // ---------------------------------------------------------------- forward noising

    @Override
    public void forwardNoise(NoisingCoefficients k, NoiseSeeds seeds, double offsetStrength, Tensor x0, Tensor xt,
                             Tensor target, Tensor eps) {
        long n = DiffusionOps.checkNoising(backend, k, seeds, offsetStrength, x0, xt, target, eps);
        int batch = k.batch();
        if (n == 0 || batch == 0) {
            return;
        }
        float[] coef = pack(batch, k.a(), k.s(), k.c(), k.d());
        long channels = offsetStrength > 0 ? x0.shape(1) : 0;
        prepare();
        check(NativeLib.d4j_forward_noise_f32(x0.address(), xt.address(), target.address(),
                        eps == null ? 0L : eps.address(), batch, n, coef, keys(seeds, batch), ids(seeds, batch),
                        seeds.streamOf(NoiseSeeds.DRAW_INITIAL), seeds.streamOf(NoiseSeeds.DRAW_OFFSET),
                        (float) offsetStrength, channels, backend.stream()),
                "forwardNoise", "d4j_forward_noise_f32", "x0 " + x0 + ", offset " + offsetStrength);
    }

    // ---------------------------------------------------------------- sampler step

    @Override
    public void samplerStep(FusedStep p, Tensor x, Tensor xIn, Tensor cond, Tensor uncond, Tensor hist, Tensor xOut,
                            Tensor histOut) {
        long n = DiffusionOps.checkStep(backend, p, x, xIn, cond, uncond, hist, xOut, histOut);
        int batch = p.batch();
        if (n == 0 || batch == 0) {
            return;
        }
        float[] coef = pack(batch, p.ax(), p.ai(), p.ag(), p.ah(), p.az(), p.ka(), p.kb());
        boolean guided = uncond != null;
        float wm1 = guided ? (float) (p.guidance() - 1.0) : 0f;
        double phi = guided ? p.rescale() : 0.0;
        NoiseSeeds seeds = p.seeds();
        boolean noise = p.hasNoise();
        long[] keys = noise ? keys(seeds, batch) : null;
        long[] ids = noise ? ids(seeds, batch) : null;
        long stream = noise ? seeds.streamOf(p.draw()) : 0L;
        String operands = "x " + x + (guided ? ", guidance " + p.guidance() + ", rescale " + phi : "");
        prepare();
        if (phi == 0) {
            check(NativeLib.d4j_sampler_step_f32(x.address(), xIn.address(), cond.address(), address(uncond),
                            address(hist), xOut.address(), address(histOut), batch, n, coef, wm1, 0.0, keys, ids,
                            stream, 0L, 0L, backend.stream()),
                    "samplerStep", "d4j_sampler_step_f32", operands);
            return;
        }
        long bytes = NativeLib.d4j_sampler_step_workspace_bytes(batch, n);
        if (bytes < 0) {
            throw new IllegalArgumentException("samplerStep: batch of " + batch + " x " + n
                    + " elements is too large for the rescale statistics");
        }
        synchronized (workspaceLock) {
            long ws = ensureWorkspace(bytes);
            check(NativeLib.d4j_sampler_step_f32(x.address(), xIn.address(), cond.address(), address(uncond),
                            address(hist), xOut.address(), address(histOut), batch, n, coef, wm1, phi, keys, ids,
                            stream, ws, workspaceBytes, backend.stream()),
                    "samplerStep", "d4j_sampler_step_f32", operands);
        }
    }

    // ---------------------------------------------------------------- noise injection

    @Override
    public void scaleAddNoise(double[] scale, double[] noiseScale, NoiseSeeds seeds, long draw, Tensor x, Tensor out) {
        long n = DiffusionOps.checkNoise(backend, scale, noiseScale, seeds, x, out);
        int batch = scale.length;
        if (n == 0 || batch == 0) {
            return;
        }
        float[] coef = pack(batch, scale, noiseScale);
        prepare();
        check(NativeLib.d4j_scale_add_noise_f32(x.address(), out.address(), batch, n, coef, keys(seeds, batch),
                        ids(seeds, batch), seeds.streamOf(draw), backend.stream()),
                "scaleAddNoise", "d4j_scale_add_noise_f32", "x " + x + ", out " + out + ", draw " + draw);
    }

    // ---------------------------------------------------------------- lifecycle

    /** Frees the rescale workspace (after the backend's queued work); later rescaled steps allocate anew. */
    @Override
    public void close() {
        synchronized (workspaceLock) {
            closed = true;
            if (workspace != 0) {
                prepare();
                NativeLib.d4j_stream_synchronize(backend.stream());
                NativeLib.d4j_free(workspace);
                workspace = 0;
                workspaceBytes = 0;
            }
        }
    }

    // ---------------------------------------------------------------- helpers

    /** The workspace of at least {@code bytes} bytes (grown after draining the stream); caller holds the lock. */
    private long ensureWorkspace(long bytes) {
        if (closed) {
            throw new IllegalStateException(this + " is closed");
        }
        if (bytes > workspaceBytes || workspace == 0) {
            if (workspace != 0) {
                check(NativeLib.d4j_stream_synchronize(backend.stream()), "samplerStep", "d4j_stream_synchronize", "");
                check(NativeLib.d4j_free(workspace), "samplerStep", "d4j_free", "rescale workspace");
                workspace = 0;
                workspaceBytes = 0;
            }
            long size = Math.max(bytes, 256);
            long[] ptr = new long[1];
            int rc = NativeLib.d4j_malloc(ptr, size);
            if (rc == 2) { // cudaErrorMemoryAllocation
                throw new OutOfMemoryError("CUDA device " + device + " has no room for a rescale workspace of " + size
                        + " bytes: " + NativeLib.d4j_last_error());
            }
            check(rc, "samplerStep", "d4j_malloc", "rescale workspace of " + size + " bytes");
            workspace = ptr[0];
            workspaceBytes = size;
        }
        return workspace;
    }

    /** Makes the backend's device current on the calling thread. */
    private void prepare() {
        check(CudaBackend.selectDevice(device), "select device", "d4j_set_device", "device " + device);
    }

    private static long address(Tensor t) {
        return t == null ? 0L : t.address();
    }

    /** {@code out[k·B + b] = (float) arrays[k][b]}: the host_coef layout of the C ABI. */
    private static float[] pack(int batch, double[]... arrays) {
        float[] out = new float[arrays.length * batch];
        for (int k = 0; k < arrays.length; k++) {
            for (int b = 0; b < batch; b++) {
                out[k * batch + b] = (float) arrays[k][b];
            }
        }
        return out;
    }

    private static long[] keys(NoiseSeeds seeds, int batch) {
        long[] k = new long[batch];
        for (int b = 0; b < batch; b++) {
            k[b] = seeds.key(b);
        }
        return k;
    }

    private static long[] ids(NoiseSeeds seeds, int batch) {
        long[] k = new long[batch];
        for (int b = 0; b < batch; b++) {
            k[b] = seeds.id(b);
        }
        return k;
    }

    private static void check(int rc, String op, String function, String operands) {
        if (rc != 0) {
            throw new CudaException(op, function, rc, NativeLib.d4j_last_error(), operands);
        }
    }
}
