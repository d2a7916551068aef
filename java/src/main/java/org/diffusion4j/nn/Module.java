package org.diffusion4j.nn;

import java.util.ArrayList;
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
 * <p>Not thread-safe during construction; read-only afterwards.
 */
public abstract class Module {

    private final LinkedHashMap<String, Parameter> parameters = new LinkedHashMap<>();
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
        if (parameters.containsKey(name) || children.containsKey(name)) {
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
