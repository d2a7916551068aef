package org.diffusion4j.io;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.tensor.DType;
import org.diffusion4j.tensor.Tensor;
import org.diffusion4j.tensor.TensorScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Objects;

import static org.diffusion4j.io.IoTestSupport.bytesOf;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Files whose values come from PyTorch (written by {@code tools/make_safetensors_fixture.py} with Debian's
 * python3-torch 1.13; see that script for why it serialises the format itself): the reader gets PyTorch's
 * values back, and the CPU backend's F32 → BF16/F16 casts round exactly as PyTorch's {@code Tensor.to} does,
 * on random values and on the special cases (±0, ±inf, subnormals, the F16 overflow edge 65504/65520,
 * ties that round to even).
 */
class TorchFixtureTest {

    private static Backend cpu;

    @BeforeAll
    static void open() {
        cpu = new CpuBackend(2);
    }

    @AfterAll
    static void close() {
        cpu.close();
    }

    static Path resource(String name) {
        try {
            return Path.of(Objects.requireNonNull(TorchFixtureTest.class.getResource("/io/" + name), name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"torch_fixture.safetensors", "torch_fixture_unaligned.safetensors"})
    void pytorchValuesReadBackAndCastsMatchPytorch(String name) throws IOException {
        Path file = resource(name);
        boolean aligned = !name.contains("unaligned");
        try (TensorScope scope = TensorScope.open()) {
            SafetensorsFile f = Safetensors.read(file, scope, cpu);
            assertEquals("tools/make_safetensors_fixture.py", f.metadata().get("writer"));
            // F64 copy of the same float32 values: the conversion is exact
            Tensor x = f.tensor("x.f32");
            assertArrayEquals(new long[] {3, 7}, x.shape());
            assertArrayEquals(x.toFloatArray(), f.tensor("x.f64").toFloatArray());
            for (String base : new String[] {"x", "special"}) {
                Tensor f32 = f.tensor(base + ".f32");
                for (DType d : new DType[] {DType.BF16, DType.F16}) {
                    Tensor ours = cpu.empty(scope, d, f32.shape());
                    cpu.cast(f32, ours);
                    Tensor torch = f.tensor(base + "." + d.name().toLowerCase(java.util.Locale.ROOT));
                    assertEquals(d, torch.dtype());
                    assertArrayEquals(bytesOf(torch), bytesOf(ours), base + " " + d + " rounding differs from PyTorch's");
                }
            }
            // I64 labels converted to I32; their values are also in the metadata as text
            int[] labels = Arrays.stream(f.metadata().get("labels").split(",")).mapToInt(Integer::parseInt).toArray();
            assertArrayEquals(labels, ints(f.tensor("labels.i64")));
            assertArrayEquals(new int[] {-3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8}, ints(f.tensor("index.i32")));
            assertArrayEquals(new int[] {0, 1, 127, 128, 254, 255}, ints(f.tensor("pixels.u8")));
            assertEquals(2.5f, f.tensor("scalar.f32").item());
            assertEquals(0, f.tensor("scalar.f32").rank());
            assertArrayEquals(new long[] {0, 4}, f.tensor("empty.f32").shape());
            for (String n : new String[] {"x.f32", "x.bf16", "x.f16", "special.f32", "index.i32", "scalar.f32"}) {
                assertEquals(aligned, f.isZeroCopy(n), n + " zero-copy in " + name);
            }
            assertTrue(!f.isZeroCopy("x.f64") && !f.isZeroCopy("labels.i64"), "converted tensors are copies");
        }
    }

    @Test
    void alignedFixtureHasTheReferenceLayout() throws IOException {
        SafetensorsHeader h = Safetensors.readHeader(resource("torch_fixture.safetensors"));
        assertEquals(0, h.headerBytes() % 8);
        for (SafetensorsHeader.Entry e : h.entries()) {
            assertEquals(0, (h.dataStart() + e.begin()) % Math.max(1, e.dtype().bits() / 8), e.toString());
        }
        SafetensorsHeader u = Safetensors.readHeader(resource("torch_fixture_unaligned.safetensors"));
        assertEquals(1, u.dataStart() % 2, "the unaligned fixture starts its data at an odd offset");
    }

    private static int[] ints(Tensor t) {
        assertEquals(DType.I32, t.dtype());
        byte[] b = bytesOf(t);
        int[] out = new int[b.length / 4];
        ByteBuffer.wrap(b).order(ByteOrder.nativeOrder()).asIntBuffer().get(out);
        return out;
    }
}
