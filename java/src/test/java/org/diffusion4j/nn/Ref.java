package org.diffusion4j.nn;

/**
 * Float64 reference implementations of the layers, written from the papers' formulas for clarity, used only by
 * tests (as forward oracles and as the functions that central differences are taken of). Arrays are row-major.
 */
public final class Ref {

    private Ref() {
    }

    /** {@code y[r, o] = Σ_i x[r, i]·W[o, i] + b[o]} (PyTorch nn.Linear). {@code b} may be null. */
    public static double[] linear(double[] x, int rows, int in, double[] w, double[] b, int out) {
        double[] y = new double[rows * out];
        for (int r = 0; r < rows; r++) {
            for (int o = 0; o < out; o++) {
                double s = b == null ? 0 : b[o];
                for (int i = 0; i < in; i++) {
                    s += x[r * in + i] * w[o * in + i];
                }
                y[r * out + o] = s;
            }
        }
        return y;
    }

    public static double sigmoid(double z) {
        return 1.0 / (1.0 + Math.exp(-z));
    }

    public static double silu(double z) {
        return z * sigmoid(z);
    }

    /**
     * GELU, tanh approximation (Hendrycks &amp; Gimpel 2016, §2): {@code 0.5 z (1 + tanh u)}, evaluated as the
     * identical {@code z σ(2u)}, since {@code 1 + tanh u} cancels in float64 too once {@code u < -10} (the
     * far negative tail, where GELU is ~1e-12 and below).
     */
    public static double gelu(double z) {
        double u = Math.sqrt(2 / Math.PI) * (z + 0.044715 * z * z * z);
        return z * sigmoid(2 * u);
    }

    public static double act(Activation a, double z) {
        return switch (a) {
            case IDENTITY -> z;
            case SILU -> silu(z);
            case GELU_TANH -> gelu(z);
        };
    }

    public static double[] act(Activation a, double[] z) {
        double[] y = new double[z.length];
        for (int i = 0; i < z.length; i++) {
            y[i] = act(a, z[i]);
        }
        return y;
    }

    /**
     * LayerNorm of {@code x [B, T, D]} with optional affine and per-sample modulation
     * {@code y = ((x − μ)/√(var + eps)·γ + β)·(1 + scale[b]) + shift[b]} (null arrays are absent).
     */
    public static double[] layerNorm(double[] x, int batch, int tokens, int d, double[] gamma, double[] beta,
                                     double[] shift, double[] scale, double eps) {
        double[] y = new double[x.length];
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < tokens; t++) {
                int base = (b * tokens + t) * d;
                double mu = 0;
                for (int i = 0; i < d; i++) {
                    mu += x[base + i];
                }
                mu /= d;
                double var = 0;
                for (int i = 0; i < d; i++) {
                    var += (x[base + i] - mu) * (x[base + i] - mu);
                }
                var /= d;
                double rs = 1 / Math.sqrt(var + eps);
                for (int i = 0; i < d; i++) {
                    double n = (x[base + i] - mu) * rs;
                    if (gamma != null) {
                        n *= gamma[i];
                    }
                    if (beta != null) {
                        n += beta[i];
                    }
                    if (scale != null) {
                        n *= 1 + scale[b * d + i];
                    }
                    if (shift != null) {
                        n += shift[b * d + i];
                    }
                    y[base + i] = n;
                }
            }
        }
        return y;
    }

    /** {@code out[b, t, d] = x + gate[b, d]·f}. */
    public static double[] gatedResidual(double[] x, double[] gate, double[] f, int batch, int tokens, int d) {
        double[] y = new double[x.length];
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < tokens; t++) {
                for (int i = 0; i < d; i++) {
                    int e = (b * tokens + t) * d + i;
                    y[e] = x[e] + gate[b * d + i] * f[e];
                }
            }
        }
        return y;
    }

    /** DiT's timestep_embedding in float64: cos of {@code t·f_i} then sin, then a 0 for odd {@code dim}. */
    public static double[] sinusoidal(double[] t, int dim, double maxPeriod) {
        int half = dim / 2;
        double[] out = new double[t.length * dim];
        for (int b = 0; b < t.length; b++) {
            for (int i = 0; i < half; i++) {
                double f = Math.exp(-Math.log(maxPeriod) * i / half);
                out[b * dim + i] = Math.cos(t[b] * f);
                out[b * dim + half + i] = Math.sin(t[b] * f);
            }
        }
        return out;
    }

    /**
     * Conv2d with kernel = stride = p, no padding: {@code y[b, o, u, v] = bias[o] + Σ_{c,i,j} w[o, c, i, j]·
     * x[b, c, u·p + i, v·p + j]}, returned as tokens {@code [B, (H/p)(W/p), D]} (flatten(2).transpose(1, 2)).
     */
    public static double[] patchConv(double[] x, int batch, int c, int h, int w, int p, double[] wt, double[] bias,
                                     int dim) {
        int gh = h / p;
        int gw = w / p;
        double[] y = new double[batch * gh * gw * dim];
        for (int b = 0; b < batch; b++) {
            for (int u = 0; u < gh; u++) {
                for (int v = 0; v < gw; v++) {
                    for (int o = 0; o < dim; o++) {
                        double s = bias[o];
                        for (int ch = 0; ch < c; ch++) {
                            for (int i = 0; i < p; i++) {
                                for (int j = 0; j < p; j++) {
                                    s += wt[((o * c + ch) * p + i) * p + j]
                                            * x[((b * c + ch) * h + u * p + i) * w + v * p + j];
                                }
                            }
                        }
                        y[((b * gh + u) * gw + v) * dim + o] = s;
                    }
                }
            }
        }
        return y;
    }

    /**
     * The reference DiT's unpatchify by its definition: {@code x = v.reshape(B, h, w, p, p, C)},
     * {@code einsum('nhwpqc->nchpwq')}, reshape {@code [B, C, h·p, w·p]}; element {@code [n, c, h·p + p', w·p + q]}
     * is {@code v[n, h, w, p', q, c]}.
     */
    public static double[] unpatchifyDiT(double[] v, int batch, int c, int gh, int gw, int p) {
        double[] out = new double[v.length];
        int hh = gh * p;
        int ww = gw * p;
        for (int n = 0; n < batch; n++) {
            for (int hi = 0; hi < gh; hi++) {
                for (int wi = 0; wi < gw; wi++) {
                    for (int pi = 0; pi < p; pi++) {
                        for (int qi = 0; qi < p; qi++) {
                            for (int ci = 0; ci < c; ci++) {
                                double val = v[((((n * gh + hi) * gw + wi) * p + pi) * p + qi) * c + ci];
                                out[((n * c + ci) * hh + hi * p + pi) * ww + wi * p + qi] = val;
                            }
                        }
                    }
                }
            }
        }
        return out;
    }
}
