package org.diffusion4j.tensor;

import java.util.Locale;
import java.util.Objects;

/**
 * Where a tensor's memory lives: host memory ({@link #CPU}) or the memory of CUDA device {@code index}.
 *
 * @param type  the kind of device
 * @param index device ordinal; always 0 for the CPU
 */
public record Device(Type type, int index) {

    /** Device kinds. */
    public enum Type { CPU, CUDA }

    /** Host memory. */
    public static final Device CPU = new Device(Type.CPU, 0);

    /**
     * Validates.
     *
     * @throws NullPointerException     when {@code type} is null
     * @throws IllegalArgumentException for a negative index, or a CPU index other than 0
     */
    public Device {
        Objects.requireNonNull(type, "type");
        if (index < 0) {
            throw new IllegalArgumentException("device index must be >= 0, got " + index);
        }
        if (type == Type.CPU && index != 0) {
            throw new IllegalArgumentException("the CPU device has index 0, got " + index);
        }
    }

    /**
     * CUDA device {@code index}.
     *
     * @param index the CUDA ordinal, {@code ≥ 0} (not checked against the devices present)
     * @throws IllegalArgumentException for a negative index
     */
    public static Device cuda(int index) {
        return new Device(Type.CUDA, index);
    }

    /**
     * Parses {@code cpu}, {@code cuda} (= {@code cuda:0}) or {@code cuda:N}.
     *
     * @throws IllegalArgumentException naming the text when it is none of these
     */
    public static Device parse(String text) {
        Objects.requireNonNull(text, "text");
        String s = text.trim().toLowerCase(Locale.ROOT);
        if (s.equals("cpu")) {
            return CPU;
        }
        if (s.equals("cuda")) {
            return cuda(0);
        }
        if (s.startsWith("cuda:")) {
            try {
                return cuda(Integer.parseInt(s.substring(5)));
            } catch (NumberFormatException e) {
                // fall through to the error below
            }
        }
        throw new IllegalArgumentException("unknown device '" + text + "': expected cpu, cuda or cuda:N");
    }

    @Override
    public String toString() {
        return type == Type.CPU ? "cpu" : "cuda:" + index;
    }
}
