package org.diffusion4j.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;

import static org.diffusion4j.io.IoTestSupport.assertFails;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** CSV of vectors: header handling, number syntax, and errors that name file, line and column. */
class CsvTest {

    @TempDir
    Path dir;

    private Path csv(String name, String text) throws IOException {
        Path p = dir.resolve(name);
        Files.writeString(p, text);
        return p;
    }

    @Test
    void readsWithAndWithoutHeader() throws IOException {
        Path h = csv("h.csv", "\uFEFFx, \"y\" ,z\n# a comment\n1,2.5,-3e2\n\n  .5 , 5., +7E-1 \r\n");
        Csv.Table t = Csv.read(h, Csv.Header.AUTO);
        assertEquals(List.of("x", "y", "z"), t.columns());
        assertEquals(2, t.rows());
        assertArrayEquals(new float[] {1, 2.5f, -300, 0.5f, 5, 0.7f}, t.values());
        Path n = csv("n.csv", "1,2\n3,4\n");
        Csv.Table u = Csv.read(n, Csv.Header.AUTO);
        assertEquals(List.of("c0", "c1"), u.columns());
        assertArrayEquals(new float[] {1, 2, 3, 4}, u.values());
        // forced header: the first line is names even when numeric
        assertArrayEquals(new float[] {3, 4}, Csv.read(n, Csv.Header.PRESENT).values());
        Dataset d = Csv.load(h, Csv.Header.AUTO);
        assertArrayEquals(new long[] {3}, d.sampleShape());
        assertEquals(2, d.size());
        assertEquals(false, d.hasLabels());
    }

    @Test
    void aLabelColumnMakesALabelledDataset() throws IOException {
        Path f = csv("labelled.csv", "x,y,cls\n1,2,0\n3,4,2\n5,6,1\n");
        for (String col : new String[] {"cls", "2"}) {
            Dataset d = Csv.load(f, Csv.Header.AUTO, col);
            assertArrayEquals(new long[] {2}, d.sampleShape());
            assertArrayEquals(new int[] {0, 2, 1}, d.labels());
            assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, d.toArray());
        }
        assertFails(FileFormatException.class, f, () -> Csv.load(f, Csv.Header.AUTO, "z"), "no column 'z'");
        Path frac = csv("frac.csv", "x,cls\n1,0\n2,1.5\n");
        assertFails(FileFormatException.class, frac, () -> Csv.load(frac, Csv.Header.AUTO, "cls"), "line 3",
                "not an integer class label");
        Path only = csv("only-label.csv", "cls\n1\n");
        assertFails(FileFormatException.class, only, () -> Csv.load(only, Csv.Header.AUTO, "cls"), "only the label");
    }

    @Test
    void textLabelsNameTheClassesInSortedOrder() throws IOException {
        // the iris layout: four measurements, then the species; a quoted name may hold a comma
        Path f = csv("iris.csv", "sepal_length,sepal_width,petal_length,petal_width,species\n"
                + "5.1,3.5,1.4,0.2,setosa\n7.0,3.2,4.7,1.4,versicolor\n6.3,3.3,6.0,2.5,virginica\n"
                + "4.9,3.0,1.4,0.2, setosa \n5.8,2.7,5.1,1.9,\"virginica, tall\"\n");
        Dataset d = Csv.load(f, Csv.Header.AUTO, "species");
        assertEquals(List.of("setosa", "versicolor", "virginica", "virginica, tall"), d.classNames());
        assertEquals(4, d.numClasses());
        assertArrayEquals(new int[] {0, 1, 2, 0, 3}, d.labels());
        assertArrayEquals(new long[] {4}, d.sampleShape());
        assertArrayEquals(new float[] {5.1f, 3.5f, 1.4f, 0.2f}, java.util.Arrays.copyOf(d.toArray(), 4));
        // by index, without a header; NFC form and no-break spaces do not make new classes
        Path g = csv("forms.csv", "1.5,caf\u00e9\n2.5,cafe\u0301\n3.5,cat\u00a0\n4.5,cat\n");
        Dataset m = Csv.load(g, Csv.Header.AUTO, "1");
        assertEquals(List.of("caf\u00e9", "cat"), m.classNames());
        assertArrayEquals(new int[] {0, 0, 1, 1}, m.labels());
        assertArrayEquals(new float[] {1.5f, 2.5f, 3.5f, 4.5f}, m.toArray());
        // numbers mixed with names: a broken number column (NaN, a typo), refused with both lines
        Path mixed = csv("mixed.csv", "x,c\n1,0\n2,1\n3,NaN\n4,1O\n");
        assertFails(FileFormatException.class, mixed, () -> Csv.load(mixed, Csv.Header.AUTO, "c"), "mixes numbers",
                "line 2: '0'", "line 4: 'NaN'");
        // two columns of the label's name; an overlong label
        Path twice = csv("twice.csv", "c,x,c\na,1,2\n");
        assertFails(FileFormatException.class, twice, () -> Csv.load(twice, Csv.Header.AUTO, "c"),
                "two columns named 'c' (1 and 3)");
        Path control = csv("control.csv", "x,c\n1,a\n2,\u001b[31mred\n");
        assertFails(FileFormatException.class, control, () -> Csv.load(control, Csv.Header.AUTO, "c"),
                "line 3, column 2", "control character");
        Path longName = csv("long.csv", "x,c\n1,a\n2," + "b".repeat(Csv.MAX_LABEL_LENGTH + 1) + "\n");
        assertFails(FileFormatException.class, longName, () -> Csv.load(longName, Csv.Header.AUTO, "c"),
                "line 3, column 2", "257 characters");
        // integer labels stay numbers: no names, the classes are 0 .. max
        Path n = csv("numbers.csv", "x,y\n1,3\n2,1.0\n");
        Dataset k = Csv.load(n, Csv.Header.AUTO, "y");
        assertEquals(List.of(), k.classNames());
        assertArrayEquals(new int[] {3, 1}, k.labels());
        assertEquals(4, k.numClasses());
        // the other columns are still numbers, and a label cannot be empty
        Path bad = csv("bad.csv", "x,c\n1,a\nz,b\n");
        assertFails(FileFormatException.class, bad, () -> Csv.load(bad, Csv.Header.AUTO, "c"), "line 3, column 1",
                "'z' is not a number");
        Path empty = csv("empty-label.csv", "x,c\n1,a\n2,\n");
        assertFails(FileFormatException.class, empty, () -> Csv.load(empty, Csv.Header.AUTO, "c"), "line 3, column 2",
                "empty class label");
        // without a header only an index names the column
        Path bare = csv("bare.csv", "1,a\n2,b\n");
        assertFails(FileFormatException.class, bare, () -> Csv.load(bare, Csv.Header.AUTO, "c"), "no column 'c'",
                "without a header");
        assertEquals(List.of("a", "b"), Csv.load(bare, Csv.Header.AUTO, "1").classNames());
        // the feature names are the header without the label column, and an unknown label column is an error
        assertEquals(List.of("sepal_length", "sepal_width", "petal_length", "petal_width"),
                Csv.featureNames(f, Csv.Header.AUTO, "species"));
        assertEquals(List.of(), Csv.featureNames(bare, Csv.Header.AUTO, "1"), "no header, no names");
        assertFails(FileFormatException.class, f, () -> Csv.featureNames(f, Csv.Header.AUTO, "nope"),
                "no column 'nope'");
    }

    @Test
    void errorsNameFileLineAndColumn() throws IOException {
        Path nan = csv("nan.csv", "a,b\n1,2\n3,NaN\n");
        assertFails(FileFormatException.class, nan, () -> Csv.read(nan, Csv.Header.AUTO), "line 3, column 2", "'NaN'",
                "not finite");
        Path inf = csv("inf.csv", "1,-inf\n");
        assertFails(FileFormatException.class, inf, () -> Csv.read(inf, Csv.Header.AUTO), "line 1, column 2", "-inf");
        Path big = csv("big.csv", "1\n1e39\n");
        assertFails(FileFormatException.class, big, () -> Csv.read(big, Csv.Header.AUTO), "line 2, column 1",
                "overflows a 32-bit float");
        Path text = csv("text.csv", "1,2\n3,four\n");
        assertFails(FileFormatException.class, text, () -> Csv.read(text, Csv.Header.AUTO), "line 2, column 2",
                "'four' is not a number");
        Path hex = csv("hex.csv", "0x1p3\n");
        assertFails(FileFormatException.class, hex, () -> Csv.read(hex, Csv.Header.ABSENT), "line 1, column 1",
                "not a number");
        Path blank = csv("blank.csv", "1,,3\n");
        assertFails(FileFormatException.class, blank, () -> Csv.read(blank, Csv.Header.AUTO), "column 2", "empty field");
        // malformed quoting (an adversarial trial read "1"2 as 12 and "1,2 as a one-column header)
        Path inner = csv("inner.csv", "1,2\n\"1\"2,3\n");
        assertFails(FileFormatException.class, inner, () -> Csv.read(inner, Csv.Header.AUTO), "line 2",
                "field 1 has text after its closing quote");
        Path open = csv("open.csv", "\"1,2\n");
        assertFails(FileFormatException.class, open, () -> Csv.read(open, Csv.Header.AUTO), "line 1",
                "never closed");
        Path mid = csv("mid.csv", "1,2\n3,4\"5\n");
        assertFails(FileFormatException.class, mid, () -> Csv.read(mid, Csv.Header.AUTO), "line 2",
                "field 2 has a quote inside it");
        Path ragged = csv("ragged.csv", "x,y\n1,2\n3\n");
        assertFails(FileFormatException.class, ragged, () -> Csv.read(ragged, Csv.Header.AUTO), "line 3 has 1 field,",
                "the header has 2");
        Path empty = csv("empty.csv", "\n# only a comment\n");
        assertFails(FileFormatException.class, empty, () -> Csv.read(empty, Csv.Header.AUTO), "no data rows");
        Path onlyHeader = csv("only.csv", "x,y\n");
        assertFails(FileFormatException.class, onlyHeader, () -> Csv.read(onlyHeader, Csv.Header.AUTO),
                "header but no data rows");
        Path forced = csv("forced.csv", "x,y\n1,2\n");
        assertFails(FileFormatException.class, forced, () -> Csv.read(forced, Csv.Header.ABSENT), "line 1, column 1",
                "'x'");
        // a bad field on line 1 next to numbers is data, not a header
        Path first = csv("first.csv", "1,oops\n2,3\n");
        assertFails(FileFormatException.class, first, () -> Csv.read(first, Csv.Header.AUTO), "line 1, column 2");
        Path latin1 = dir.resolve("latin1.csv");
        Files.write(latin1, new byte[] {'a', (byte) 0xE9, '\n', '1', '\n'});
        assertFails(FileFormatException.class, latin1, () -> Csv.read(latin1, Csv.Header.AUTO), "not valid UTF-8");
        assertThrows(NoSuchFileException.class, () -> Csv.read(dir.resolve("none.csv"), Csv.Header.AUTO));
    }
}
