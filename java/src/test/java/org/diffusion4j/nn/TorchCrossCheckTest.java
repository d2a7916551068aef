package org.diffusion4j.nn;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;

import static org.diffusion4j.nn.NnTestSupport.poisoned;

/**
 * {@link Linear} + GELU (tanh), {@link Gelu}, {@link LayerNorm} with and without affine followed by DiT's
 * {@code modulate}, and {@link SiLU}, forward and backward, against PyTorch's values in
 * {@code src/test/resources/torch/} (written by {@code tools/make_torch_nn_fixtures.py} with Debian's
 * python3-torch 1.13: float64 results of the stored float32 inputs, see {@link TorchFixture} for the tolerances).
 * The weights are PyTorch's, loaded by their state-dict names. Each case runs with the fused CPU ops
 * ({@link NnOps#forBackend}) and the generic {@link ComposedNnOps}.
 */
class TorchCrossCheckTest {

    private static CpuBackend backend;
    private static NnOps fused;
    private static NnOps composed;

    @BeforeAll
    static void setUp() {
        backend = new CpuBackend(2);
        fused = NnOps.forBackend(backend);
        composed = new ComposedNnOps(backend);
    }

    @AfterAll
    static void tearDown() {
        composed.close();
        fused.close();
        backend.close();
    }

    private static NnOps ops(boolean composedOps) {
        return composedOps ? composed : fused;
    }

    private static String label(boolean composedOps) {
        return composedOps ? "ComposedNnOps" : "CpuNnOps";
    }

    /** timm Mlp's {@code fc1} + {@code GELU(approximate='tanh')}: the fused Linear+activation and the Gelu layer. */
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void linearGeluMatchesPytorch(boolean composedOps) throws IOException {
        NnOps ops = ops(composedOps);
        try (TensorScope scope = TensorScope.open()) {
            TorchFixture f = TorchFixture.load("linear_gelu.safetensors", scope, backend);
            Tensor x = f.tensor("x");                                                       // [2, 5, 24]
            Linear fc1 = new Linear(ops, scope, 24, 40, true);
            f.loadParameters(fc1, "fc1.");
            Linear.Cache c = fc1.forward(scope, x, Activation.GELU_TANH);
            f.assertOutputClose("Linear pre-activation", c.pre(), "pre");                        // [2, 5, 40]
            f.assertOutputClose("Linear + GELU_TANH", c.out(), "out");
            Tensor dx = fc1.backward(scope, c, f.tensor("dout"), true);
            f.assertGradClose("Linear backward dx", dx, "dx");
            f.assertGradClose("Linear backward dW", fc1.weight().grad(), "fc1.weight.grad");
            f.assertGradClose("Linear backward db", fc1.bias().grad(), "fc1.bias.grad");

            // the standalone layer on PyTorch's pre-activation
            Gelu gelu = new Gelu(ops);
            PointwiseLayer.Cache g = gelu.forward(scope, f.tensor("pre"));
            f.assertOutputClose("Gelu layer", g.out(), "out");
            f.assertGradClose("Gelu layer backward", gelu.backward(scope, g, f.tensor("dout")), "dpre");
            System.out.println(f.summary(label(composedOps)));
        }
    }

    /** {@code modulate(norm(x), shift, scale)} of the reference DiT, eps 1e-6, with and without affine. */
    @ParameterizedTest
    @ValueSource(strings = {"affine", "plain", "affine composed", "plain composed"})
    void layerNormModulateMatchesPytorch(String variant) throws IOException {
        boolean affine = variant.startsWith("affine");
        boolean composedOps = variant.endsWith("composed");
        NnOps ops = ops(composedOps);
        try (TensorScope scope = TensorScope.open()) {
            TorchFixture f = TorchFixture.load("layernorm_modulate_" + (affine ? "affine" : "plain")
                    + ".safetensors", scope, backend);
            LayerNorm norm = new LayerNorm(ops, scope, 48, 1e-6f, affine);
            f.loadParameters(norm, "norm.");                          // nothing to load without affine
            Tensor x = f.tensor("x");                                 // [2, 7, 48]
            Tensor shift = f.tensor("shift");                         // [2, 48]
            Tensor scale = f.tensor("scale");                         // [2, 48]
            LayerNorm.Cache c = norm.forward(scope, x, shift, scale);
            f.assertOutputClose("LayerNorm + modulate", c.out(), "out");
            Tensor dShift = poisoned(backend, scope, 2, 48);
            Tensor dScale = poisoned(backend, scope, 2, 48);
            Tensor dx = norm.backward(scope, c, f.tensor("dout"), dShift, dScale);
            f.assertGradClose("LayerNorm backward dx", dx, "dx");
            f.assertGradClose("LayerNorm backward dshift", dShift, "dshift");
            f.assertGradClose("LayerNorm backward dscale", dScale, "dscale");
            if (affine) {
                f.assertGradClose("LayerNorm backward dγ", norm.weight().grad(), "norm.weight.grad");
                f.assertGradClose("LayerNorm backward dβ", norm.bias().grad(), "norm.bias.grad");
            }
            System.out.println(f.summary(label(composedOps)));
        }
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void siluMatchesPytorch(boolean composedOps) throws IOException {
        try (TensorScope scope = TensorScope.open()) {
            TorchFixture f = TorchFixture.load("silu.safetensors", scope, backend);
            SiLU silu = new SiLU(ops(composedOps));
            PointwiseLayer.Cache c = silu.forward(scope, f.tensor("x"));                 // [3, 37]
            f.assertOutputClose("SiLU", c.out(), "out");
            f.assertGradClose("SiLU backward", silu.backward(scope, c, f.tensor("dout")), "dx");
            System.out.println(f.summary(label(composedOps)));
        }
    }
}
