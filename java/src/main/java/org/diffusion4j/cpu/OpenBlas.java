package org.diffusion4j.cpu;

import org.bytedeco.javacpp.Loader;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.NoSuchElementException;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * OpenBLAS, from the {@code org.bytedeco:openblas} preset, called through FFM downcalls.
 *
 * <p><b>Loading.</b> The preset's {@link Loader} extracts the platform library from its jar and loads it (once
 * per process, on first use, ~0.3 s); the symbols are then looked up in that same library file.
 *
 * <p><b>Why FFM and not the preset's JNI method.</b> Measured per call on a 1x1x1 to 16x16x16 sgemm
 * (2-core Zen 4, JDK 25): the preset's {@code cblas_sgemm(.., FloatPointer, ..)} with pointers built from
 * the segment address costs about 57–180 ns, an FFM downcall 44–110 ns (a {@code critical} downcall saves only
 * ~4 ns more and would block the GC during long products, so it is not used). Passing the segments (not raw
 * addresses) keeps their arena alive for the duration of the call.
 *
 * <p><b>Threads.</b> {@code openblas_set_num_threads} is process-global (so is {@code ..._local} in this
 * build), so every GEMM runs under {@link #acquire}: callers that want the same BLAS thread count run
 * concurrently; a caller that wants another count waits until the library is idle, then switches it.
 */
final class OpenBlas {

    static final int ROW_MAJOR = 101;
    static final int NO_TRANS = 111;
    static final int TRANS = 112;

    private static final Object LOCK = new Object();
    private static int active;   // GEMMs running now, guarded by LOCK
    private static int current;  // the thread count they run with, guarded by LOCK

    private final MethodHandle sgemm;
    private final MethodHandle setNumThreads;
    private final MethodHandle getNumThreads;
    private final String version;
    private final String config;

    @SuppressWarnings("restricted") // downcalls into OpenBLAS; its config string is NUL-terminated static memory
    private OpenBlas(SymbolLookup lookup) {
        Linker linker = Linker.nativeLinker();
        sgemm = linker.downcallHandle(find(lookup, "cblas_sgemm"), FunctionDescriptor.ofVoid(JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, JAVA_FLOAT,
                ADDRESS, JAVA_INT));
        setNumThreads = linker.downcallHandle(find(lookup, "openblas_set_num_threads"),
                FunctionDescriptor.ofVoid(JAVA_INT));
        getNumThreads = linker.downcallHandle(find(lookup, "openblas_get_num_threads"),
                FunctionDescriptor.of(JAVA_INT));
        MethodHandle getConfig = linker.downcallHandle(find(lookup, "openblas_get_config"),
                FunctionDescriptor.of(ADDRESS));
        String cfg;
        try {
            MemorySegment p = (MemorySegment) getConfig.invokeExact();
            cfg = p.equals(MemorySegment.NULL) ? "OpenBLAS" : p.reinterpret(4096).getString(0).trim();
        } catch (Throwable t) {
            cfg = "OpenBLAS";
        }
        config = cfg;
        String[] words = cfg.split("\\s+");
        version = words.length >= 2 && words[0].equals("OpenBLAS") ? words[1] : "?";
    }

    private static MemorySegment find(SymbolLookup lookup, String name) {
        return lookup.find(name).orElseThrow(() -> new NoSuchElementException("symbol " + name
                + " not found in the OpenBLAS library"));
    }

    // ---------------------------------------------------------------- loading

    /** The loaded library, or the reason it could not be loaded. */
    private static final class Holder {
        static final Object STATE = load();

        @SuppressWarnings("restricted") // the library file the preset's Loader extracted and loaded
        private static Object load() {
            try {
                Loader.load(org.bytedeco.openblas.global.openblas_nolapack.class);
                SymbolLookup lookup = null;
                for (Map.Entry<String, String> e : Loader.getLoadedLibraries().entrySet()) {
                    String key = e.getKey();
                    if (key.startsWith("openblas") && e.getValue() != null && Files.exists(Path.of(e.getValue()))) {
                        lookup = SymbolLookup.libraryLookup(Path.of(e.getValue()), Arena.global());
                        break;
                    }
                }
                if (lookup == null) {
                    lookup = SymbolLookup.loaderLookup();
                }
                return new OpenBlas(lookup);
            } catch (Throwable t) { // LinkageError, NoSuchElementException, IllegalCallerException, ...
                return t;
            }
        }
    }

    /**
     * The library.
     *
     * @throws IllegalStateException with the reason when it could not be loaded
     */
    static OpenBlas get() {
        Object s = Holder.STATE;
        if (s instanceof OpenBlas ob) {
            return ob;
        }
        Throwable t = (Throwable) s;
        throw new IllegalStateException("OpenBLAS could not be loaded: " + t, t);
    }

    /** {@code "OpenBLAS 0.3.31"}, or {@code "OpenBLAS unavailable (reason)"}. Never throws. */
    static String describe() {
        Object s = Holder.STATE;
        if (s instanceof OpenBlas ob) {
            return "OpenBLAS " + ob.version;
        }
        return "OpenBLAS unavailable (" + s + ")";
    }

    /** The library's build configuration, e.g. {@code "OpenBLAS 0.3.31 DYNAMIC_ARCH NO_AFFINITY Zen ..."}. */
    String config() {
        return config;
    }

    // ---------------------------------------------------------------- threads

    /**
     * Waits until GEMMs may run with {@code threads} BLAS threads and registers one; pair with
     * {@link #release()} in a finally block.
     */
    void acquire(int threads) {
        synchronized (LOCK) {
            boolean interrupted = false;
            while (active > 0 && current != threads) {
                try {
                    LOCK.wait();
                } catch (InterruptedException e) {
                    interrupted = true;
                }
            }
            if (active == 0) { // re-read: other code in the process may have changed the count
                try {
                    if ((int) getNumThreads.invokeExact() != threads) {
                        setNumThreads.invokeExact(threads);
                    }
                } catch (Throwable t) {
                    throw new IllegalStateException("openblas_set_num_threads(" + threads + ") failed", t);
                }
                current = threads;
            }
            active++;
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Ends one GEMM registered by {@link #acquire}. */
    void release() {
        synchronized (LOCK) {
            if (--active == 0) {
                LOCK.notifyAll();
            }
        }
    }

    // ---------------------------------------------------------------- sgemm

    /**
     * Row-major {@code cblas_sgemm}; the caller has validated every dimension and leading dimension
     * ({@code lda >= max(1, cols of a as stored)} etc.) and holds {@link #acquire}.
     */
    void sgemm(boolean transA, boolean transB, int m, int n, int k, float alpha, MemorySegment a, int lda,
               MemorySegment b, int ldb, float beta, MemorySegment c, int ldc) {
        try {
            sgemm.invokeExact(ROW_MAJOR, transA ? TRANS : NO_TRANS, transB ? TRANS : NO_TRANS, m, n, k, alpha, a, lda,
                    b, ldb, beta, c, ldc);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("cblas_sgemm failed", t);
        }
    }
}
