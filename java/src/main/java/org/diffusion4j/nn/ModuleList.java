package org.diffusion4j.nn;

import java.util.ArrayList;
import java.util.List;

/**
 * Children named {@code 0, 1, 2, ...} in the order added, like {@code torch.nn.ModuleList} and
 * {@code torch.nn.Sequential}: parameterless entries ({@link SiLU}, {@link Gelu}) keep their index, so
 * {@code Sequential(SiLU(), Linear(...))} gives {@code 1.weight}, the naming of DiT's {@code adaLN_modulation}.
 */
public final class ModuleList extends Module {

    private final List<Module> items = new ArrayList<>();

    /**
     * Appends {@code m} under the next index; returns {@code m}.
     *
     * @throws NullPointerException     when {@code m} is null
     * @throws IllegalArgumentException when {@code m} is this list
     */
    public <M extends Module> M add(M m) {
        registerModule(Integer.toString(items.size()), m);
        items.add(m);
        return m;
    }

    /**
     * The module at {@code index}.
     *
     * @throws IndexOutOfBoundsException when {@code index} is outside {@code [0, size())}
     */
    public Module get(int index) {
        return items.get(index);
    }

    /** Number of entries. */
    public int size() {
        return items.size();
    }
}
