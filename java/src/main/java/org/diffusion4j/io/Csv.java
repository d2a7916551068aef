package org.diffusion4j.io;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * Comma-separated numeric tables of vectors (points, tabular rows, fixed-length time series): one sample a
 * line, every column a finite decimal number — except a column of class labels named to
 * {@link #load(Path, Header, String)}, which may hold integers or names.
 *
 * <ul>
 *   <li>Fields are separated by commas and trimmed of spaces; a field may be enclosed in double quotes.</li>
 *   <li>Empty lines and lines whose first non-space character is {@code #} are skipped.</li>
 *   <li>The first line is a header when {@link Header#PRESENT}, data when {@link Header#ABSENT}; with
 *       {@link Header#AUTO} it is a header when none of its fields is a number (so a data line with one
 *       bad field is reported, not mistaken for a header).</li>
 *   <li>A number is {@code [+-]digits[.digits][e[+-]digits]} (also {@code .5}, {@code 5.}). {@code NaN},
 *       {@code Inf}, values that overflow a float, empty fields, other text and a wrong field count are
 *       errors: a {@link FileFormatException} naming the file, the line and the column (both 1-based) and
 *       the text found.</li>
 * </ul>
 */
public final class Csv {

    /** Whether the first line holds column names. */
    public enum Header { AUTO, PRESENT, ABSENT }

    /**
     * A parsed table.
     *
     * @param columns column names (from the header, or {@code c0, c1, ...} without one)
     * @param rows    number of data rows
     * @param values  {@code rows × columns.size()} values, row-major
     */
    public record Table(List<String> columns, int rows, float[] values) {
        /** Copies the column names; {@code values} ({@code rows × cols} row-major) is taken as is. */
        public Table {
            columns = List.copyOf(columns);
        }

        /** Number of columns. */
        public int cols() {
            return columns.size();
        }
    }

    private static final Pattern NUMBER = Pattern.compile("[+-]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][+-]?\\d+)?");
    private static final Pattern MISSING = Pattern.compile("|nan|na", Pattern.CASE_INSENSITIVE);
    private static final Pattern NON_FINITE = Pattern.compile("[+-]?(?:nan|inf|infinity)", Pattern.CASE_INSENSITIVE);

    private Csv() {
    }

    /**
     * Reads a CSV file (UTF-8).
     *
     * @throws FileFormatException naming file, line and column for the problems in the class comment, for
     *                             invalid UTF-8, and for a file without data rows
     */
    public static Table read(Path file, Header header) throws IOException {
        return read(file, header, null).table();
    }

    /**
     * Reads a CSV file like {@link #read}, except that missing values are allowed: an empty field, {@code NaN} or
     * {@code NA} (any case) is read as {@code NaN} — the values to fill in when rows are imputed. With
     * {@code labelColumn} (a header name or a 0-based index) that column is kept as text, e.g. the class labels of a
     * training file (an empty label is allowed here).
     *
     * @return the numeric table and, with {@code labelColumn}, that column's values (trimmed, NFC) in row order
     * @throws FileFormatException naming file, line and column as {@link #read} does (infinities, text and overflow
     *                             stay errors)
     */
    public static Rows readWithMissing(Path file, Header header, String labelColumn) throws IOException {
        Labelled l = read(file, header, labelColumn, true);
        return new Rows(l.table(), l.labels() == null ? List.of() : List.of(l.labels()), l.labelName());
    }

    /**
     * Rows read by {@link #readWithMissing}.
     *
     * @param table       the numeric columns
     * @param labels      the text column's values, one per row (empty list without one)
     * @param labelColumn that column's name, or null
     */
    public record Rows(Table table, List<String> labels, String labelColumn) {
        /** Copies the label list. */
        public Rows {
            labels = List.copyOf(labels);
        }
    }

    /** A table whose label column was kept as text ({@code labels} in row order), the rest as numbers. */
    private record Labelled(Table table, String[] labels, int[] lines, String labelName) {
    }

    /**
     * Reads {@code file}; with {@code labelColumn} (a header name, or a 0-based index) that column is kept as text
     * (non-empty, trimmed) and left out of the numeric table.
     */
    private static Labelled read(Path file, Header header, String labelColumn) throws IOException {
        return read(file, header, labelColumn, false);
    }

    private static Labelled read(Path file, Header header, String labelColumn, boolean missing) throws IOException {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(header, "header");
        List<String> columns = null;
        int cols = -1;
        int labelCol = -1;
        String[] labels = labelColumn == null ? null : new String[256];
        int[] labelLines = labelColumn == null ? null : new int[256];
        float[] values = new float[1024];
        int count = 0;
        int rows = 0;
        try (BufferedReader in = open(file)) {
            int[] line = {0};
            boolean first = true;
            String[] fields;
            while ((fields = nextFields(in, line, file)) != null) {
                int lineNo = line[0];
                if (first) {
                    first = false;
                    boolean isHeader = isHeader(fields, header);
                    cols = fields.length;
                    if (labelColumn != null) {
                        labelCol = labelColumnIndex(file, isHeader ? List.of(fields) : null, labelColumn);
                        if (labelCol < 0 || labelCol >= cols) {
                            throw new FileFormatException(file, "has no column '" + labelColumn + "' for the labels "
                                    + "(columns: " + (isHeader ? List.of(fields) : cols + " without a header")
                                    + "; give a header name or a 0-based index)");
                        }
                        if (cols < 2) {
                            throw new FileFormatException(file, "has only the label column; the data needs at least "
                                    + "one more");
                        }
                    }
                    if (isHeader) {
                        columns = List.of(fields);
                        continue;
                    }
                }
                if (fields.length != cols) {
                    throw new FileFormatException(file, "line " + lineNo + " has " + fields.length + (fields.length == 1 ? " field, " : " fields, ")
                            + (columns != null ? "the header has " : "the first line has ") + cols);
                }
                if (count + cols > values.length) {
                    long grown = Math.max((long) values.length * 2, (long) count + cols);
                    if (grown > Integer.MAX_VALUE - 8) {
                        throw new FileFormatException(file, "more than 2^31 values, too large to load");
                    }
                    values = Arrays.copyOf(values, (int) grown);
                }
                for (int c = 0; c < cols; c++) {
                    if (c == labelCol) {
                        String label = normaliseLabel(fields[c]);
                        if (label.isEmpty() && !missing) {
                            throw new FileFormatException(file, "line " + lineNo + ", column " + (c + 1)
                                    + ": empty class label");
                        }
                        if (label.chars().anyMatch(Character::isISOControl)) {
                            throw new FileFormatException(file, "line " + lineNo + ", column " + (c + 1) + ": a class "
                                    + "label with a control character (such as a tab or an escape)");
                        }
                        if (label.length() > MAX_LABEL_LENGTH) {
                            throw new FileFormatException(file, "line " + lineNo + ", column " + (c + 1) + ": a class "
                                    + "label of " + label.length() + " characters (at most " + MAX_LABEL_LENGTH + ")");
                        }
                        if (rows == labels.length) {
                            labels = Arrays.copyOf(labels, labels.length * 2);
                            labelLines = Arrays.copyOf(labelLines, labelLines.length * 2);
                        }
                        labels[rows] = label;
                        labelLines[rows] = lineNo;
                    } else {
                        values[count++] = missing && MISSING.matcher(fields[c]).matches() ? Float.NaN
                                : number(file, lineNo, c, fields[c]);
                    }
                }
                rows++;
            }
        } catch (CharacterCodingException e) {
            throw new FileFormatException(file, "is not valid UTF-8 text", e);
        }
        if (rows == 0) {
            throw new FileFormatException(file, columns != null ? "has a header but no data rows" : "holds no data rows");
        }
        if (columns == null) {
            List<String> names = new ArrayList<>();
            for (int c = 0; c < cols; c++) {
                names.add("c" + c);
            }
            columns = names;
        }
        String labelName = null;
        if (labelCol >= 0) {
            labelName = columns.get(labelCol);
            columns = new ArrayList<>(columns);
            columns.remove(labelCol);
        }
        return new Labelled(new Table(columns, rows, Arrays.copyOf(values, count)),
                labels == null ? null : Arrays.copyOf(labels, rows),
                labelLines == null ? null : Arrays.copyOf(labelLines, rows), labelName);
    }

    /**
     * The names of the data columns of {@code file} as {@link #load} would read it (the header without the label
     * column, when {@code labelColumn} names one by header name or index), or an empty list when the file has no
     * header. Reads only up to the first line that is not empty or a comment.
     *
     * @throws FileFormatException naming the file when that line cannot be split or is not valid UTF-8, or names no
     *                             such label column
     */
    public static List<String> featureNames(Path file, Header header, String labelColumn) throws IOException {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(header, "header");
        try (BufferedReader in = open(file)) {
            String[] fields = nextFields(in, new int[1], file);
            if (fields != null) {
                if (!isHeader(fields, header)) {
                    return List.of();
                }
                List<String> names = new ArrayList<>(List.of(fields));
                if (labelColumn != null) {
                    int col = labelColumnIndex(file, names, labelColumn);
                    if (col < 0 || col >= names.size()) {
                        throw new FileFormatException(file, "has no column '" + labelColumn + "' for the labels "
                                + "(columns: " + names + "; give a header name or a 0-based index)");
                    }
                    names.remove(col);
                }
                return List.copyOf(names);
            }
            return List.of();
        } catch (CharacterCodingException e) {
            throw new FileFormatException(file, "is not valid UTF-8 text", e);
        }
    }

    /** Loads a CSV file as an unlabelled dataset of {@code rows} vectors {@code [cols]}. */
    public static Dataset load(Path file, Header header) throws IOException {
        Table t = read(file, header);
        return Dataset.of(t.values(), new long[] {t.cols()}, null, List.of());
    }

    /**
     * Loads a CSV file whose column {@code labelColumn} (a header name, or else a 0-based index: a header column named
     * "2" wins over index 2) holds class labels: a labelled dataset of {@code rows} vectors of the other
     * {@code cols − 1} columns.
     *
     * <p>A column of integers {@code ≥ 0} gives those labels, {@code numClasses = max + 1} and no class names
     * ({@code 1.0} reads as 1). A column of names (no field a number) names the classes: the distinct names, each
     * in Unicode NFC form and trimmed of spaces (no-break spaces too), sorted by {@link String#compareTo} (the order
     * of an image folder's sub-folders; Python's {@code sorted} agrees except for characters beyond U+FFFF) are
     * classes {@code 0 … K−1}, and {@link Dataset#classNames()} holds them. A column that mixes numbers and names
     * ({@code 1, 2, NaN}; a typo such as {@code 1O}) is refused: it is almost always a broken number column.
     *
     * @throws FileFormatException naming the file for an unknown or twice-named column, an empty label, a label
     *                             longer than {@value #MAX_LABEL_LENGTH} characters, numeric labels that are not
     *                             integers {@code ≥ 0}, numbers mixed with names (lines and values), or a file with
     *                             no other column
     */
    public static Dataset load(Path file, Header header, String labelColumn) throws IOException {
        Objects.requireNonNull(labelColumn, "labelColumn");
        Labelled l = read(file, header, labelColumn);
        Table t = l.table();
        String[] text = l.labels();
        int[] labels = new int[t.rows()];
        int firstNumber = -1;
        int firstName = -1;
        for (int r = 0; r < t.rows() && (firstNumber < 0 || firstName < 0); r++) {
            if (NUMBER.matcher(text[r]).matches()) {
                firstNumber = firstNumber < 0 ? r : firstNumber;
            } else {
                firstName = firstName < 0 ? r : firstName;
            }
        }
        if (firstNumber >= 0 && firstName >= 0) {
            throw new FileFormatException(file, "label column '" + l.labelName() + "' mixes numbers (line "
                    + l.lines()[firstNumber] + ": '" + text[firstNumber] + "') with names (line "
                    + l.lines()[firstName] + ": '" + abbreviate(text[firstName]) + "'): labels must be all integers "
                    + ">= 0 or all names");
        }
        if (firstName < 0) {
            for (int r = 0; r < t.rows(); r++) {
                double y = Double.parseDouble(text[r]);
                if (!(y >= 0 && y == Math.rint(y) && y < 1 << 24)) {
                    throw new FileFormatException(file, "line " + l.lines()[r] + ": label " + text[r] + " in column '"
                            + l.labelName() + "' is " + (y >= 1 << 24 && y == Math.rint(y)
                            ? "beyond the largest class label, " + ((1 << 24) - 1) + " (a class per label value: "
                            + "use names or small integers)"
                            : "not an integer class label >= 0 (labels are integers >= 0 or names)"));
                }
                labels[r] = (int) y;
            }
            return Dataset.of(t.values(), new long[] {t.cols()}, labels, List.of());
        }
        List<String> names = Arrays.stream(text).distinct().sorted().toList();
        Map<String, Integer> index = new HashMap<>();
        for (int k = 0; k < names.size(); k++) {
            index.put(names.get(k), k);
        }
        for (int r = 0; r < t.rows(); r++) {
            labels[r] = index.get(text[r]);
        }
        return Dataset.of(t.values(), new long[] {t.cols()}, labels, names);
    }

    /**
     * The 0-based index {@code labelColumn} names: a header name (null {@code header}: none), else a number; -1 when
     * it is neither (the range is the caller's to check).
     *
     * @throws FileFormatException when two header columns have that name
     */
    private static int labelColumnIndex(Path file, List<String> header, String labelColumn)
            throws FileFormatException {
        int col = header == null ? -1 : header.indexOf(labelColumn);
        int again = header == null ? -1 : header.lastIndexOf(labelColumn);
        if (again != col) {
            throw new FileFormatException(file, "has two columns named '" + labelColumn + "' (" + (col + 1) + " and "
                    + (again + 1) + "); name the label column by its 0-based index");
        }
        return col >= 0 ? col : labelColumn.matches("\\d{1,9}") ? Integer.parseInt(labelColumn) : -1;
    }

    /** A UTF-8 reader that reports malformed input instead of replacing it. */
    private static BufferedReader open(Path file) throws IOException {
        var decoder = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        return new BufferedReader(new java.io.InputStreamReader(Files.newInputStream(file), decoder));
    }

    /**
     * The fields of the next line that is not empty or a comment (a first line's byte-order mark skipped), or null at
     * the end; {@code line[0]} counts the lines read (1-based number of the returned one).
     *
     * @throws FileFormatException naming the line when it cannot be split
     */
    private static String[] nextFields(BufferedReader in, int[] line, Path file) throws IOException {
        String text;
        while ((text = in.readLine()) != null) {
            line[0]++;
            String trimmed = text.strip();
            if (line[0] == 1 && trimmed.startsWith("\uFEFF")) {
                trimmed = trimmed.substring(1).strip();
            }
            if (trimmed.isEmpty() || trimmed.startsWith("#")) {
                continue;
            }
            try {
                return split(trimmed);
            } catch (IllegalArgumentException e) {
                throw new FileFormatException(file, "line " + line[0] + ": " + e.getMessage());
            }
        }
        return null;
    }

    /** Whether the first line's {@code fields} are a header under {@code header} (AUTO: none is a number). */
    private static boolean isHeader(String[] fields, Header header) {
        return switch (header) {
            case PRESENT -> true;
            case ABSENT -> false;
            case AUTO -> Arrays.stream(fields).noneMatch(f -> NUMBER.matcher(f).matches());
        };
    }

    /** Longest class label of a CSV label column, in UTF-16 characters. */
    public static final int MAX_LABEL_LENGTH = 256;

    /** {@code s} in Unicode NFC form without leading or trailing white or space characters (no-break spaces too). */
    public static String normaliseLabel(String s) {
        String n = java.text.Normalizer.normalize(Objects.requireNonNull(s, "label"), java.text.Normalizer.Form.NFC);
        int a = 0;
        int b = n.length();
        while (a < b && isSpace(n.charAt(a))) {
            a++;
        }
        while (b > a && isSpace(n.charAt(b - 1))) {
            b--;
        }
        return n.substring(a, b);
    }

    private static boolean isSpace(char c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c);
    }

    private static float number(Path file, int line, int col, String field) throws FileFormatException {
        String where = "line " + line + ", column " + (col + 1) + ": ";
        if (field.isEmpty()) {
            throw new FileFormatException(file, where + "empty field; every column must hold a number");
        }
        if (NON_FINITE.matcher(field).matches()) {
            throw new FileFormatException(file, where + "'" + field + "' is not finite; data must be finite numbers");
        }
        if (!NUMBER.matcher(field).matches()) {
            throw new FileFormatException(file, where + "'" + abbreviate(field) + "' is not a number");
        }
        float v = (float) Double.parseDouble(field);
        if (!Float.isFinite(v)) {
            throw new FileFormatException(file, where + "'" + field + "' overflows a 32-bit float");
        }
        return v;
    }

    /**
     * Splits on commas outside double quotes and trims the fields; a field may be enclosed in quotes (RFC 4180:
     * the quote opens the field, {@code ""} inside is a quote, only spaces may follow the closing one).
     *
     * @throws IllegalArgumentException for a quote inside an unquoted field, text after a closing quote or an
     *                                  unclosed quote
     */
    private static String[] split(String line) {
        List<String> out = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        int field = 1;
        int i = 0;
        int n = line.length();
        while (true) {
            while (i < n && line.charAt(i) == ' ') {
                i++;
            }
            if (i < n && line.charAt(i) == '"') {                      // a quoted field
                i++;
                boolean closed = false;
                while (i < n) {
                    char ch = line.charAt(i++);
                    if (ch == '"') {
                        if (i < n && line.charAt(i) == '"') {
                            cur.append('"');
                            i++;
                        } else {
                            closed = true;
                            break;
                        }
                    } else {
                        cur.append(ch);
                    }
                }
                if (!closed) {
                    throw new IllegalArgumentException("field " + field + " opens a quote that is never closed");
                }
                while (i < n && line.charAt(i) == ' ') {
                    i++;
                }
                if (i < n && line.charAt(i) != ',') {
                    throw new IllegalArgumentException("field " + field + " has text after its closing quote");
                }
            } else {
                while (i < n && line.charAt(i) != ',') {
                    char ch = line.charAt(i++);
                    if (ch == '"') {
                        throw new IllegalArgumentException("field " + field + " has a quote inside it (quote the "
                                + "whole field and double inner quotes)");
                    }
                    cur.append(ch);
                }
            }
            out.add(cur.toString().strip());
            cur.setLength(0);
            if (i >= n) {
                break;
            }
            i++;                                                          // the comma
            field++;
        }
        return out.toArray(String[]::new);
    }

    private static String abbreviate(String s) {
        return s.length() <= 40 ? s : s.substring(0, 37) + "...";
    }
}
