package org.diffusion4j.random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The golden table {@code native/tests/philox_golden.inc}, which {@code native/tests/test_philox.cpp} also
 * asserts against the CUDA header compiled for the host: equal bits on both sides prove that the Java CPU
 * generator and the GPU kernels agree bitwise. A failure here means the contract changed; regenerate the
 * table with {@link PhiloxGolden#main} only when that is intended (and say so: stored seeds change meaning).
 */
class PhiloxGoldenTest {

    @Test
    void everyGoldenRowMatchesBitForBit() throws IOException {
        List<PhiloxGolden.Row> rows = PhiloxGolden.load();
        assertTrue(rows.size() > 500, "golden table has only " + rows.size() + " rows");
        List<String> bad = new ArrayList<>();
        for (PhiloxGolden.Row row : rows) {
            int got = row.compute();
            if (got != row.bits()) {
                bad.add(row.line() + " computes 0x" + Integer.toHexString(got));
            }
        }
        assertTrue(bad.isEmpty(), bad.size() + " of " + rows.size() + " golden rows differ, first: "
                + bad.subList(0, Math.min(5, bad.size())));
    }

    @Test
    void goldenTableHasTheRowsTheGeneratorWrites() throws IOException {
        List<PhiloxGolden.Row> committed = PhiloxGolden.load();
        List<PhiloxGolden.Row> generated = PhiloxGolden.compute();
        assertEquals(generated.size(), committed.size(), "row count; regenerate with PhiloxGolden.main");
        for (int r = 0; r < committed.size(); r++) {
            PhiloxGolden.Row c = committed.get(r);
            PhiloxGolden.Row g = generated.get(r);
            assertEquals(g.line(), c.line(), "row " + r);
        }
    }

    @Test
    void tableCoversEveryKind() throws IOException {
        String kinds = PhiloxGolden.load().stream().map(r -> String.valueOf(r.kind())).distinct().sorted()
                .reduce("", String::concat);
        assertEquals("CLNRSUW", kinds);
    }
}
