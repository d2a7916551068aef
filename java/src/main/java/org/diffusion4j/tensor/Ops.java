package org.diffusion4j.tensor;

/** Op codes shared by every backend (the CUDA kernels take the ordinal, so the order is part of the C ABI). */
public final class Ops {

    private Ops() {
    }

    /** Elementwise binary ops: {@code out = a OP b}. */
    public enum Binary {
        ADD, SUB, MUL, DIV, MAX, MIN;

        /**
         * The op in float64, for oracles (tests and reference implementations); the backends do not call it.
         * {@code MAX}/{@code MIN} follow {@link Math#max}/{@link Math#min}.
         */
        public double apply(double a, double b) {
            return switch (this) {
                case ADD -> a + b;
                case SUB -> a - b;
                case MUL -> a * b;
                case DIV -> a / b;
                case MAX -> Math.max(a, b);
                case MIN -> Math.min(a, b);
            };
        }
    }

    /** Elementwise unary ops: {@code out = OP(a)}. */
    public enum Unary {
        NEG, ABS, EXP, LOG, SQRT, RSQRT, SQUARE, RECIPROCAL, TANH, SIGMOID;

        /** The op in float64, for oracles (tests and reference implementations); the backends do not call it. */
        public double apply(double a) {
            return switch (this) {
                case NEG -> -a;
                case ABS -> Math.abs(a);
                case EXP -> Math.exp(a);
                case LOG -> Math.log(a);
                case SQRT -> Math.sqrt(a);
                case RSQRT -> 1.0 / Math.sqrt(a);
                case SQUARE -> a * a;
                case RECIPROCAL -> 1.0 / a;
                case TANH -> Math.tanh(a);
                case SIGMOID -> 1.0 / (1.0 + Math.exp(-a));
            };
        }
    }

    /** Reductions over the last dim. */
    public enum Reduce { SUM, MEAN, MAX }

    /**
     * How the second operand of a binary op is broadcast against {@code a} of shape {@code [..., N]}
     * with {@code R} rows ({@code R * N = a.numel()}).
     */
    public enum Broadcast {
        /** {@code b} has the shape of {@code a}. */
        NONE,
        /** {@code b} has one element, used for every element of {@code a}. */
        SCALAR,
        /** {@code b} has shape {@code [N]}: the same vector added to every row (a bias). */
        ROW,
        /** {@code b} has shape {@code [..., 1]} with {@code R} elements: one value per row (e.g. per sample). */
        PER_ROW;

        /**
         * Classifies {@code b} against {@code a}; SCALAR wins over ROW/PER_ROW when {@code b} has one element
         * and the shapes differ.
         *
         * @throws IllegalArgumentException naming both shapes when no rule applies
         */
        public static Broadcast of(Tensor a, Tensor b) {
            if (a.sameShape(b)) {
                return NONE;
            }
            if (b.numel() == 1) {
                return SCALAR;
            }
            if (b.rank() == 1 && a.rank() >= 1 && b.shape(0) == a.cols()) {
                return ROW;
            }
            if (b.rank() == a.rank() && a.rank() >= 1 && b.shape(-1) == 1 && b.numel() == a.rows()) {
                boolean same = true;
                for (int d = 0; d < a.rank() - 1; d++) {
                    same &= a.shape(d) == b.shape(d);
                }
                if (same) {
                    return PER_ROW;
                }
            }
            throw new IllegalArgumentException("b " + b + " cannot be broadcast against a " + a
                    + ": expected the same shape, one element, [" + a.cols() + "] (row) or [..., 1] (per row)");
        }
    }
}
