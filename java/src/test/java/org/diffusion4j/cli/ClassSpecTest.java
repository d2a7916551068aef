package org.diffusion4j.cli;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code sample --class}: names, indices, and the cases where a name is also a number. */
class ClassSpecTest {

    private static void fails(String spec, int k, List<String> names, String... fragments) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ModelSession.classIndex(spec, k, names), spec);
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), "'" + f + "' in: " + e.getMessage());
        }
    }

    @Test
    void namesAndIndices() {
        List<String> iris = List.of("setosa", "versicolor", "virginica");
        assertEquals(1, ModelSession.classIndex("versicolor", 3, iris));
        assertEquals(1, ModelSession.classIndex(" VersiColor ", 3, iris), "case and spaces");
        assertEquals(2, ModelSession.classIndex("2", 3, iris));
        assertEquals(2, ModelSession.classIndex("+2", 3, iris));
        assertEquals(2, ModelSession.classIndex("index:2", 3, iris));
        assertEquals(0, ModelSession.classIndex("name:setosa", 3, iris));
        fails("3", 3, iris, "--class 3 is outside [0, 3)", "0 = setosa");
        fails("rose", 3, iris, "not a class name", "2 = virginica");
        fails("name:2", 3, iris, "not a class name");
        fails("index:x", 3, iris, "not a 0-based class index");
        assertEquals(4, ModelSession.classIndex("4", 5, List.of()));
        fails("cat", 5, List.of(), "no names");
        fails("0", 0, List.of(), "unconditional");
    }

    /** Image folders 0 … 11 sort as 0, 1, 10, 11, 2, …: a bare number that is both an index and a name is refused. */
    @Test
    void aNumberThatIsAlsoAnotherClassesNameIsAmbiguous() {
        List<String> folders = List.of("0", "1", "10", "11", "2", "3", "4", "5", "6", "7", "8", "9");
        fails("2", 12, folders, "ambiguous", "class 2 is named '10'", "name of class 4", "index:2", "name:2");
        assertEquals(4, ModelSession.classIndex("name:2", 12, folders));
        assertEquals(2, ModelSession.classIndex("index:2", 12, folders));
        // the same number as index and name, or a name beyond the indices: no ambiguity
        assertEquals(0, ModelSession.classIndex("0", 12, folders));
        assertEquals(1, ModelSession.classIndex("1", 12, folders));
        List<String> years = List.of("2019", "2020");
        assertEquals(1, ModelSession.classIndex("2020", 2, years));
        // names equal ignoring case, a trailing space in a folder name
        List<String> cats = List.of("Cat", "cat", "dog ");
        assertEquals(1, ModelSession.classIndex("cat", 3, cats));
        fails("CAT", 3, cats, "ambiguous ignoring case");
        assertEquals(2, ModelSession.classIndex("dog", 3, cats));
        assertEquals(2, ModelSession.classIndex("dog ", 3, cats));
        // NFC and NFD spellings of one name
        assertEquals(0, ModelSession.classIndex("cafe\u0301", 1 + 1, List.of("caf\u00e9", "tea")));
    }
}
