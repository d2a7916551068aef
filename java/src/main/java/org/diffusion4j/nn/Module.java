package org.diffusion4j.nn;

import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Shape;
import org.diffusion4j.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A node of a model: its own {@link Parameter}s and named child modules, listed recursively with PyTorch
 * state-dict names ({@code blocks.0.attn.qkv.weight}): a module's parameters come first in registration order,
 * then each child's, depth first, as {@code torch.nn.Module.named_parameters()} lists them. Layers compute with
 * explicit {@code forward}/{@code backward} methods of their own; this class only holds the structure.
 *
 * <p><b>Buffers.</b> A module may also hold named non-trainable tensors ({@link #registerBuffer}): fixed values that
 * belong to the model's state dict but get no gradient and no optimizer state, like the reference DiT's
 * {@code pos_embed} (a {@code requires_grad=False} tensor in its {@code state_dict}). They are listed by
 * {@link #namedBuffers()} and {@link #stateDict()}, never by {@link #namedParameters()} or {@link #parameters()}.
 *
 * <p>Not thread-safe during construction; read-only afterwards.
 *
 * <p>Named after PyTorch's {@code nn.Module}; with {@code import org.diffusion4j.nn.*} the bare name is ambiguous
 * with {@link java.lang.Module}, so import this class by name where you use it.
 */
public abstract class Module {

    private final LinkedHashMap<String, Parameter> parameters = new LinkedHashMap<>();
    private final LinkedHashMap<String, Tensor> buffers = new LinkedHashMap<>();
    private final LinkedHashMap<String, Module> children = new LinkedHashMap<>();

    /**
     * Registers {@code p} under its own name.
     *
     * @return {@code p}
     * @throws IllegalArgumentException when the name is taken by a parameter or child of this module
     */
    protected final Parameter registerParameter(Parameter p) {
        Objects.requireNonNull(p, "p");
        requireFree(p.name());
        parameters.put(p.name(), p);
        return p;
    }

    /**
     * Registers a non-trainable tensor (see the class comment) under {@code name} (non-empty, no {@code '.'}).
     *
     * @param value F32 contiguous; the module keeps the reference (the caller's scope owns the memory)
     * @return {@code value}
     * @throws IllegalArgumentException when the name is invalid or taken, or the tensor is not F32 contiguous
     */
    protected final Tensor registerBuffer(String name, Tensor value) {
        Parameter.checkName(name);
        Objects.requireNonNull(value, "value");
        Shape.requireDType(name, value, DType.F32);
        Shape.requireContiguous(name, value);
        requireFree(name);
        buffers.put(name, value);
        return value;
    }

    /**
     * Registers {@code child} under {@code name} (non-empty, no {@code '.'}).
     *
     * @return {@code child}
     * @throws IllegalArgumentException when the name is invalid or taken, or the child is this module
     */
    protected final <M extends Module> M registerModule(String name, M child) {
        Parameter.checkName(name);
        Objects.requireNonNull(child, "child");
        if (child == this) {
            throw new IllegalArgumentException("a module cannot be its own child ('" + name + "')");
        }
        requireFree(name);
        children.put(name, child);
        return child;
    }

    private void requireFree(String name) {
        if (parameters.containsKey(name) || buffers.containsKey(name) || children.containsKey(name)) {
            throw new IllegalArgumentException("name '" + name + "' is already used in " + getClass().getSimpleName());
        }
    }

    /** This module's own parameters (not its children's), in registration order. */
    public final Map<String, Parameter> localParameters() {
        return Collections.unmodifiableMap(parameters);
    }

    /** The direct children, in registration order. */
    public final Map<String, Module> children() {
        return Collections.unmodifiableMap(children);
    }

    /** Every parameter, recursively, by dotted state-dict name, in the order described in the class comment. */
    public final Map<String, Parameter> namedParameters() {
        LinkedHashMap<String, Parameter> out = new LinkedHashMap<>();
        collect("", out);
        return Collections.unmodifiableMap(out);
    }

    private void collect(String prefix, Map<String, Parameter> out) {
        for (Map.Entry<String, Parameter> e : parameters.entrySet()) {
            out.put(prefix + e.getKey(), e.getValue());
        }
        for (Map.Entry<String, Module> e : children.entrySet()) {
            e.getValue().collect(prefix + e.getKey() + ".", out);
        }
    }

    /** This module's own buffers (not its children's), in registration order. */
    public final Map<String, Tensor> localBuffers() {
        return Collections.unmodifiableMap(buffers);
    }

    /** Every buffer, recursively, by dotted state-dict name: own buffers first, then each child's, depth first. */
    public final Map<String, Tensor> namedBuffers() {
        LinkedHashMap<String, Tensor> out = new LinkedHashMap<>();
        collectBuffers("", out);
        return Collections.unmodifiableMap(out);
    }

    private void collectBuffers(String prefix, Map<String, Tensor> out) {
        for (Map.Entry<String, Tensor> e : buffers.entrySet()) {
            out.put(prefix + e.getKey(), e.getValue());
        }
        for (Map.Entry<String, Module> e : children.entrySet()) {
            e.getValue().collectBuffers(prefix + e.getKey() + ".", out);
        }
    }

    /**
     * The state dict: every parameter value and every buffer by dotted name, in the order of
     * {@code torch.nn.Module.state_dict()} — per module its own parameters, then its own buffers, then each child's
     * entries, depth first. The tensors are the live values (not copies); a checkpoint writes exactly these.
     */
    public final Map<String, Tensor> stateDict() {
        LinkedHashMap<String, Tensor> out = new LinkedHashMap<>();
        collectState("", out);
        return Collections.unmodifiableMap(out);
    }

    private void collectState(String prefix, Map<String, Tensor> out) {
        for (Map.Entry<String, Parameter> e : parameters.entrySet()) {
            out.put(prefix + e.getKey(), e.getValue().value());
        }
        for (Map.Entry<String, Tensor> e : buffers.entrySet()) {
            out.put(prefix + e.getKey(), e.getValue());
        }
        for (Map.Entry<String, Module> e : children.entrySet()) {
            e.getValue().collectState(prefix + e.getKey() + ".", out);
        }
    }

    /**
     * Copies every entry of {@link #stateDict()} from {@code source} by name (strict in the sense of PyTorch's
     * {@code load_state_dict(strict=True)} for the model's own names: each must be present, F32, of the same shape),
     * checking all of them before copying any. Entries of {@code source} that are not in the state dict (e.g. a
     * checkpoint's {@code optim.*} or {@code ema.*} tensors) are not touched; their names are returned. Gradients are
     * left as they are.
     *
     * @param source tensors by state-dict name, on any backend (e.g. memory-mapped host tensors of a checkpoint)
     * @return the names in {@code source} that are not in this module's state dict, sorted
     * @throws IllegalArgumentException listing every missing name, or naming a tensor of the wrong dtype or shape,
     *                                  or a source tensor that overlaps another entry's memory (a source entry that
     *                                  is the module's own tensor is skipped)
     * @throws IllegalStateException    when a source tensor's scope is closed; nothing is copied then
     */
    public final List<String> loadStateDict(Map<String, Tensor> source) {
        Objects.requireNonNull(source, "source");
        Map<String, Tensor> own = stateDict();
        List<String> missing = new ArrayList<>();
        for (Map.Entry<String, Tensor> e : own.entrySet()) {
            Tensor src = source.get(e.getKey());
            if (src == null) {
                missing.add(e.getKey());
                continue;
            }
            src.checkAlive();
            Shape.requireDType(e.getKey(), src, DType.F32);
            if (!Arrays.equals(src.shape(), e.getValue().shape())) {
                throw new IllegalArgumentException("state-dict entry " + e.getKey() + " is "
                        + Arrays.toString(src.shape()) + " in the source but "
                        + Arrays.toString(e.getValue().shape()) + " in " + getClass().getSimpleName());
            }
            // A source that is some other entry's own memory would be overwritten before it is read.
            for (Map.Entry<String, Tensor> d : own.entrySet()) {
                if (!d.getKey().equals(e.getKey()) && src.device().equals(d.getValue().device())
                        && Shape.overlaps(src, d.getValue())) {
                    throw new IllegalArgumentException("state-dict entry " + e.getKey() + " of the source " + src
                            + " overlaps the memory of this module's " + d.getKey() + " " + d.getValue());
                }
            }
        }
        if (!missing.isEmpty()) {
            throw new IllegalArgumentException(missing.size() + " state-dict entries missing from the source: "
                    + missing);
        }
        for (Map.Entry<String, Tensor> e : own.entrySet()) {
            Tensor src = source.get(e.getKey());
            Tensor dst = e.getValue();
            if (isSameMemory(src, dst)) {
                continue;                                   // loading a module's own tensors: nothing to copy
            }
            if (src.device().equals(dst.device())) {
                dst.backend().copy(src, dst);
            } else {
                dst.copyFrom(src.toFloatArray());
            }
        }
        List<String> unexpected = new ArrayList<>();
        for (String k : source.keySet()) {
            if (!own.containsKey(k)) {
                unexpected.add(k);
            }
        }
        Collections.sort(unexpected);
        return unexpected;
    }

    private static boolean isSameMemory(Tensor a, Tensor b) {
        return a == b || a.device().equals(b.device()) && a.dtype() == b.dtype() && a.sameShape(b)
                && Arrays.equals(a.strides(), b.strides()) && a.numel() > 0 && a.address() == b.address();
    }

    /** Every parameter, recursively, in {@link #namedParameters()} order. */
    public final List<Parameter> parameters() {
        return new ArrayList<>(namedParameters().values());
    }

    /** Total number of parameter elements. */
    public final long parameterCount() {
        long n = 0;
        for (Parameter p : namedParameters().values()) {
            n += p.numel();
        }
        return n;
    }

    /** Sets every parameter's gradient to zero. */
    public final void zeroGrad() {
        for (Parameter p : namedParameters().values()) {
            p.zeroGrad();
        }
    }
}
