package org.diffusion4j.cli;

import org.diffusion4j.io.Dataset;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * eval judges class-conditional samples by the data's labels: the model's classes are mapped to the data's by name
 * (found by a code review: a model evaluated on data lacking one of its classes reported 0.33 accuracy silently).
 */
class ClassMapTest {

    private static Dataset data(List<String> names, int... labels) {
        return Dataset.of(new float[labels.length], new long[] {1}, labels, names);
    }

    @Test
    void modelClassesMapToTheDatasByName() {
        List<String> model = List.of("alpha", "beta", "gamma");
        assertArrayEquals(new int[] {0, 1, 2}, EvalCommand.classMap(3, model, data(model, 0, 1, 2)));
        // the same names in another order (a renamed class that sorts elsewhere) are remapped
        assertArrayEquals(new int[] {2, 0, 1}, EvalCommand.classMap(3, model,
                data(List.of("beta", "gamma", "alpha"), 0, 1, 2)));
        IllegalArgumentException missing = assertThrows(IllegalArgumentException.class,
                () -> EvalCommand.classMap(3, model, data(List.of("beta", "gamma"), 0, 1)));
        assertTrue(missing.getMessage().contains("the model's class 0 'alpha' is not a class of the data"),
                missing.getMessage());
        // without names on either side the counts must agree
        assertArrayEquals(new int[] {0, 1, 2}, EvalCommand.classMap(3, List.of(), data(List.of(), 0, 1, 2)));
        IllegalArgumentException counts = assertThrows(IllegalArgumentException.class,
                () -> EvalCommand.classMap(3, List.of(), data(List.of(), 0, 1)));
        assertTrue(counts.getMessage().contains("the model has 3 classes but the data 2"), counts.getMessage());
        // nothing to map for an unconditional model or unlabelled data
        assertNull(EvalCommand.classMap(0, List.of(), data(List.of(), 0, 1)));
        assertNull(EvalCommand.classMap(3, model, Dataset.of(new float[2], new long[] {1}, null, List.of())));
    }
}
