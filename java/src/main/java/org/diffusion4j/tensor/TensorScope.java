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
    private final Workspace workspace;   // null: every allocation from the arena
    private final Arena view;            // what arena() hands out: the arena without close()

    private TensorScope(Arena arena, Workspace workspace) {
        this.arena = arena;
        this.workspace = workspace;
        this.view = new Arena() {
            @Override
            public MemorySegment allocate(long byteSize, long byteAlignment) {
                return arena.allocate(byteSize, byteAlignment);
            }

            @Override
            public MemorySegment.Scope scope() {
                return arena.scope();
            }

            @Override
            public void close() {
                throw new UnsupportedOperationException("the arena of a TensorScope closes with the scope: call "
                        + "TensorScope.close()");
            }
        };
    }

    /** Opens a new scope. */
    public static TensorScope open() {
        return new TensorScope(Arena.ofShared(), null);
    }

    /**
     * Opens a new scope whose host allocations come from {@code workspace}'s slab while it has room (uninitialised
     * memory, no zero-filling; see {@link Workspace}). Tensors still die with this scope.
     *
     * @throws IllegalStateException when the workspace is closed or another scope on it is still open
     */
    public static TensorScope open(Workspace workspace) {
        java.util.Objects.requireNonNull(workspace, "workspace");
        TensorScope s = new TensorScope(Arena.ofShared(), workspace);
        try {
            workspace.attach(s);
        } catch (RuntimeException e) {
            s.arena.close();
            throw e;
        }
        return s;
    }

    /**
     * The arena whose lifetime bounds every tensor of this scope, for tying other memory to it (e.g.
     * {@link MemorySegment#reinterpret(long, Arena, java.util.function.Consumer)} of device memory, or
     * {@link java.nio.channels.FileChannel#map(java.nio.channels.FileChannel.MapMode, long, long, Arena) a file
     * mapping}). Its {@code scope()} is the scope's, its {@code allocate} allocates from the arena directly (not from
     * a {@link Workspace}); it cannot be closed on its own: {@link #close()} closes it, and hands a workspace back.
     *
     * @return a view of the scope's arena whose {@link Arena#close()} throws {@link UnsupportedOperationException}
     */
    public Arena arena() {
        return view;
    }

    /** True until {@link #close()} has been called. */
    public boolean isAlive() {
        return arena.scope().isAlive();
    }

    /**
     * Allocates uninitialised host memory owned by this scope: from the workspace slab when the scope has one and it
     * has room, else from the C library (large buffers) or the arena (small ones; see {@code HostMemory}). Nothing
     * may be assumed about the contents (tests run with {@code -Dd4j.poisonEmpty=true}, which fills them with NaN).
     *
     * @throws IllegalArgumentException on a negative size or an alignment that is not a power of two
     * @throws IllegalStateException    when the scope is closed
     */
    @Override
    @SuppressWarnings("restricted") // re-scopes a slice of the workspace slab to this scope's arena (same memory)
    public MemorySegment allocate(long byteSize, long byteAlignment) {
        if (!isAlive()) {
            throw new IllegalStateException("tensor scope is closed");
        }
        if (workspace != null && byteSize >= 0 && byteAlignment > 0 && (byteAlignment & (byteAlignment - 1)) == 0) {
            MemorySegment s = workspace.take(this, byteSize, byteAlignment);
            if (s != null) {
                // the slice's lifetime becomes this scope's: use after close() throws like any scope tensor
                return HostMemory.poisoned(s.reinterpret(arena, null));
            }
        }
        return HostMemory.allocate(arena, byteSize, byteAlignment);
    }

    /**
     * Frees every host and device buffer allocated in this scope (and hands its workspace back). Idempotent.
     *
     * @throws IllegalStateException changing nothing while an op on another thread is using one of its tensors
     */
    @Override
    public void close() {
        if (!arena.scope().isAlive()) {
            return;
        }
        try {
            arena.close();   // throws while a tensor is in use elsewhere: then the scope keeps its workspace
        } catch (IllegalStateException e) {
            if (!arena.scope().isAlive()) {
                return;      // closed by another thread at the same moment
            }
            throw new IllegalStateException("tensor scope is in use (an op on another thread is reading or writing one "
                    + "of its tensors); close it after that op returns", e);
        }
        if (workspace != null) {
            workspace.detach(this);
        }
    }
}
