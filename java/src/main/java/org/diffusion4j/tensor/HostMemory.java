package org.diffusion4j.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

/**
 * Uninitialised host memory for tensors: {@code aligned_alloc}/{@code free} of the C library, owned by an
 * {@link Arena} (freed when it closes, never by the garbage collector).
 *
 * <p>Why: {@link Arena#allocate} zero-fills, a full pass of writes over every new buffer that {@link Backend#empty}
 * does not promise. For a DiT step's first activations, a sampler's first batch or a caller that opens a fresh scope
 * per call, that pass cost as much as the computation that overwrote the memory next (1.1 s of a 1.5 s sample grid in
 * a profile of {@code train}). Small buffers ({@link #MIN_BYTES}) stay with the arena: there the downcall would cost
 * more than the zeroing.
 *
 * <p><b>Poisoning for tests.</b> With the system property {@code d4j.poisonEmpty=true} every uninitialised allocation
 * of a {@link TensorScope} (these, the arena's small ones and the {@link Workspace} slab's slices) is filled with the
 * all-ones bytes {@link #POISON_BYTE} (NaN as a float), so that an op reading an element nobody wrote fails its test instead of
 * reading a lucky zero (DESIGN.md §5, "poison outputs before a run"). The build's test runs set it.
 *
 * <p>Platforms without {@code aligned_alloc} in the default C library lookup (e.g. Windows) fall back to the arena.
 */
final class HostMemory {

    /** Buffers from this size on come from {@code aligned_alloc}; smaller ones from the arena. */
    static final long MIN_BYTES = 1L << 16;
    /** The poison byte: all ones, a NaN as float32, float64 and bf16, and −1 as an int32 (no valid class label). */
    static final byte POISON_BYTE = (byte) 0xFF;
    /** Whether uninitialised allocations are poisoned ({@code -Dd4j.poisonEmpty=true}). */
    static final boolean POISON = Boolean.getBoolean("d4j.poisonEmpty");

    private static final MethodHandle ALIGNED_ALLOC;
    private static final MethodHandle FREE;

    static {
        MethodHandle alloc = null;
        MethodHandle free = null;
        try {
            Linker linker = Linker.nativeLinker();
            SymbolLookup libc = linker.defaultLookup();
            Optional<MemorySegment> a = libc.find("aligned_alloc");
            Optional<MemorySegment> f = libc.find("free");
            if (a.isPresent() && f.isPresent()) {
                alloc = downcall(linker, a.get(), FunctionDescriptor.of(ValueLayout.ADDRESS,
                        ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
                free = downcall(linker, f.get(), FunctionDescriptor.ofVoid(ValueLayout.ADDRESS));
            }
        } catch (RuntimeException | LinkageError e) {      // no native access or no C library lookup: use the arena
            alloc = null;
            free = null;
        }
        ALIGNED_ALLOC = alloc;
        FREE = free;
    }

    private HostMemory() {
    }

    @SuppressWarnings("restricted") // fixed C signatures: void *aligned_alloc(size_t, size_t), void free(void *)
    private static MethodHandle downcall(Linker linker, MemorySegment symbol, FunctionDescriptor fd) {
        return linker.downcallHandle(symbol, fd);
    }

    /** Whether large buffers come from {@code aligned_alloc} here (false: every buffer from the arena). */
    static boolean usesMalloc() {
        return ALIGNED_ALLOC != null;
    }

    /**
     * {@code byteSize} bytes aligned to {@code byteAlignment} (a power of two), owned by {@code arena}: uninitialised
     * ({@link #POISON_BYTE} bytes with poisoning on) for large sizes, zero-filled from the arena for small ones.
     *
     * @throws IllegalArgumentException on a negative size or an alignment that is not a power of two
     * @throws OutOfMemoryError      when there is no room (naming the byte count)
     * @throws IllegalStateException when {@code arena} is closed
     */
    @SuppressWarnings("restricted") // the block aligned_alloc returned, of the size asked for, freed by the arena
    static MemorySegment allocate(Arena arena, long byteSize, long byteAlignment) {
        if (byteSize < 0 || byteAlignment <= 0 || (byteAlignment & (byteAlignment - 1)) != 0) {
            throw new IllegalArgumentException("cannot allocate " + byteSize + " bytes aligned to " + byteAlignment
                    + " (the size must be >= 0 and the alignment a power of two)");
        }
        if (!arena.scope().isAlive()) {
            throw new IllegalStateException("tensor scope is closed");
        }
        if (ALIGNED_ALLOC == null || byteSize < MIN_BYTES || byteAlignment > 4096) {
            try {
                return poisoned(arena.allocate(byteSize, byteAlignment));
            } catch (OutOfMemoryError e) {
                OutOfMemoryError oom = new OutOfMemoryError("cannot allocate " + byteSize + " bytes of host memory"
                        + (e.getMessage() == null ? "" : ": " + e.getMessage()));
                oom.initCause(e);
                throw oom;
            } catch (IllegalStateException e) {             // closed by another thread meanwhile
                throw new IllegalStateException("tensor scope is closed", e);
            }
        }
        long align = Math.max(byteAlignment, 64);
        long rounded = (byteSize + align - 1) / align * align;  // C11: the size is a multiple of the alignment
        if (rounded < byteSize) {
            throw new OutOfMemoryError("cannot allocate " + byteSize + " bytes of host memory");
        }
        MemorySegment p;
        try {
            p = (MemorySegment) ALIGNED_ALLOC.invokeExact(align, rounded);
        } catch (Throwable t) {
            throw new IllegalStateException("aligned_alloc(" + align + ", " + rounded + ") failed", t);
        }
        if (p.equals(MemorySegment.NULL)) {
            throw new OutOfMemoryError("cannot allocate " + byteSize + " bytes of host memory (aligned_alloc "
                    + "returned NULL)");
        }
        MemorySegment owned;
        try {
            owned = p.reinterpret(byteSize, arena, HostMemory::free);
        } catch (RuntimeException e) {                      // arena closed by another thread meanwhile
            free(p);
            throw new IllegalStateException("tensor scope is closed", e);
        }
        return poisoned(owned);
    }

    /** {@code s} filled with {@link #POISON_BYTE} bytes when poisoning is on; {@code s} as it is otherwise. */
    static MemorySegment poisoned(MemorySegment s) {
        if (POISON) {
            s.fill(POISON_BYTE);
        }
        return s;
    }

    private static void free(MemorySegment p) {
        try {
            FREE.invokeExact(p);
        } catch (Throwable t) {
            throw new IllegalStateException("free failed", t);
        }
    }
}
