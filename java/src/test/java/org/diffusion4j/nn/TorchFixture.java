package org.diffusion4j.nn;

import org.diffusion4j.io.Safetensors;
import org.diffusion4j.io.SafetensorsFile;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;

import java.io.IOException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * One PyTorch cross-check case: a file of {@code src/test/resources/torch/} written by
 * {@code tools/make_torch_nn_fixtures.py} (inputs, weights, upstream gradient, and PyTorch's outputs and gradients,
 * computed in float64 from the stored float32 inputs and rounded once to float32; see the script), and the
 * comparison of our float32 results with it by the relative error {@code ‖ours − torch‖₂/‖torch‖₂} of DESIGN.md §5.
 * Every failure names the file and the tensor. The largest error of each case is kept for {@link #summary}.
 */
public final class TorchFixture {

    /**
     * Outputs: one float32 forward (a few GEMM/reduction roundings) against the float64 result; DESIGN.md §5's
     * "~1e-5 for reductions/GEMM".
     */
    public static final double OUTPUT_TOL = 1e-5;
    /** Gradients: a float32 backward (one more GEMM/reduction chain than the forward) against float64. */
    public static final double GRAD_TOL = 1e-4;

    private final String file;
    private final SafetensorsFile tensors;
    private double maxOutputErr;
    private double maxGradErr;
    private String worstOutput = "-";
    private String worstGrad = "-";

    private TorchFixture(String file, SafetensorsFile tensors) {
        this.file = file;
        this.tensors = tensors;
    }

    /**
     * Loads {@code /torch/<file>} from the test class path into {@code scope} on {@code backend}, checking that
     * the script wrote it and that its metadata names the same case.
     */
    public static TorchFixture load(String file, TensorScope scope, Backend backend) throws IOException {
        URL url = TorchFixture.class.getResource("/torch/" + file);
        if (url == null) {
            fail("missing test resource /torch/" + file + " (regenerate with /usr/bin/python3 "
                    + "tools/make_torch_nn_fixtures.py)");
        }
        Path path;
        try {
            path = Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
        SafetensorsFile f = Safetensors.read(path, scope, backend);
        assertEquals("tools/make_torch_nn_fixtures.py", f.metadata().get("writer"), file + ": writer");
        assertEquals(file, f.metadata().get("case") + ".safetensors", file + ": case name in the metadata");
        return new TorchFixture(file, f);
    }

    /** The file name. */
    public String file() {
        return file;
    }

    /** Tensor {@code name} of the file (F32), failing with the file's name when absent. */
    public Tensor tensor(String name) {
        Tensor t = tensors.tensors().get(name);
        if (t == null) {
            fail(file + " has no tensor '" + name + "'; it has " + tensors.tensors().keySet());
        }
        assertEquals(DType.F32, t.dtype(), file + ": " + name + " dtype");
        return t;
    }

    /**
     * Copies the file's {@code prefix + name} into every parameter {@code name} of {@code module} (all of them
     * must be in the file, with the same shape) and zeroes the gradients.
     */
    public void loadParameters(Module module, String prefix) {
        for (Map.Entry<String, Parameter> e : module.namedParameters().entrySet()) {
            String key = prefix + e.getKey();
            Tensor src = tensor(key);
            Parameter p = e.getValue();
            if (!Arrays.equals(src.shape(), p.shape())) {
                fail(file + ": " + key + " is " + Arrays.toString(src.shape()) + " but " + module + "'s parameter "
                        + e.getKey() + " is " + Arrays.toString(p.shape()));
            }
            p.value().copyFrom(src.toFloatArray());
            p.zeroGrad();
        }
    }

    /** Compares a forward result with the file's {@code name} at {@link #OUTPUT_TOL}. */
    public double assertOutputClose(String what, Tensor ours, String name) {
        double e = check(what, ours, name, OUTPUT_TOL);
        if (e >= maxOutputErr) {
            maxOutputErr = e;
            worstOutput = name;
        }
        return e;
    }

    /** Compares a gradient with the file's {@code name} at {@link #GRAD_TOL}. */
    public double assertGradClose(String what, Tensor ours, String name) {
        double e = check(what, ours, name, GRAD_TOL);
        if (e >= maxGradErr) {
            maxGradErr = e;
            worstGrad = name;
        }
        return e;
    }

    /**
     * Asserts {@code ‖ours − torch‖/‖torch‖ ≤ tol} with equal shapes and no NaN, naming the file, the tensor, the
     * error and the worst element; returns the error.
     */
    public double check(String what, Tensor ours, String name, double tol) {
        Tensor ref = tensor(name);
        String where = file + ": " + name + " (" + what + ")";
        if (!Arrays.equals(ours.shape(), ref.shape())) {
            fail(where + ": ours is " + Arrays.toString(ours.shape()) + ", PyTorch's is "
                    + Arrays.toString(ref.shape()));
        }
        float[] a = ours.toFloatArray();
        float[] b = ref.toFloatArray();
        double num = 0;
        double den = 0;
        int worst = 0;
        double worstDiff = -1;
        for (int i = 0; i < a.length; i++) {
            if (!Float.isFinite(a[i])) {
                fail(where + ": element " + i + " is " + a[i] + ", PyTorch has " + b[i]);
            }
            double d = (double) a[i] - b[i];
            num += d * d;
            den += (double) b[i] * b[i];
            if (Math.abs(d) > worstDiff) {
                worstDiff = Math.abs(d);
                worst = i;
            }
        }
        double err = den == 0 ? Math.sqrt(num) : Math.sqrt(num / den);
        if (!(err <= tol)) {
            fail(String.format("%s: relative error %.3e > %.1e; worst element %d: ours %s, PyTorch %s", where, err,
                    tol, worst, a[worst], b[worst]));
        }
        return err;
    }

    /** One line: the file and the largest output and gradient errors (printed by the tests for the record). */
    public String summary(String what) {
        return String.format("torch cross-check %-40s %-38s max rel err: outputs %.2e (%s), grads %.2e (%s)", file,
                what, maxOutputErr, worstOutput, maxGradErr, worstGrad);
    }
}
