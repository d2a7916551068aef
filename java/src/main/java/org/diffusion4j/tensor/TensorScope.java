package org.diffusion4j.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SegmentAllocator;

/**
 * Owner of tensor memory. Every tensor allocated in a scope — host or device — is freed when the scope
 * closes, and never by the garbage collector:
 *
 * <pre>{@code
 * try (TensorScope scope = TensorScope.open()) {
 *     Tensor x = backend.empty(scope, DType.F32, 64, 2);
 *     ...
 * } // host and device buffers freed here; using x afterwards throws IllegalStateException
 * }</pre>
 *
 * <p>A scope is backed by a shared {@link Arena}, so tensors may be used from any thread (the CPU
 * backend's worker pool reads them). Closing a scope while another thread still uses its tensors is a
 * caller error that FFM reports as {@link IllegalStateException}.
 */
public final class TensorScope implements AutoCloseable, SegmentAllocator {

    private final Arena arena;

    private TensorScope(Arena arena) {
        this.arena = arena;
    }

    /** Opens a new scope. */
    public static TensorScope open() {
        return new TensorScope(Arena.ofShared());
    }

    /** The arena whose lifetime bounds every tensor of this scope. */
    public Arena arena() {
        return arena;
    }

    /** True until {@link #close()} has been called. */
    public boolean isAlive() {
        return arena.scope().isAlive();
    }

    /**
     * Allocates host memory owned by this scope.
     *
     * @throws IllegalStateException when the scope is closed
     */
    @Override
    public MemorySegment allocate(long byteSize, long byteAlignment) {
        if (!isAlive()) {
            throw new IllegalStateException("tensor scope is closed");
        }
        return arena.allocate(byteSize, byteAlignment);
    }

    /** Frees every host and device buffer allocated in this scope. */
    @Override
    public void close() {
        arena.close();
    }
}
