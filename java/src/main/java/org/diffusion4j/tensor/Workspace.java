package org.diffusion4j.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A reusable slab of host memory for the tensors of short-lived scopes, such as one training step: a scope
 * opened with {@link TensorScope#open(Workspace)} takes its host allocations from the slab by bumping an offset
 * (no zero-filling, no fresh pages, no {@code malloc}/{@code free}) and hands the whole slab back when it closes.
 *
 * <p><b>Sizing.</b> The slab starts empty and grows on its own: a scope whose allocations do not fit takes the
 * rest from its own arena (as without a workspace) and, when it closes, the slab is reallocated to
 * that scope's total demand (rounded up to 1 MiB), so from the second step of a fixed-shape loop on, every
 * allocation comes from the slab.
 *
 * <p><b>Safety.</b> A tensor from the slab still belongs to its scope: its segment is tied to the scope's arena,
 * so using it after the scope closed throws {@link IllegalStateException} as usual. Its memory is
 * <em>uninitialised</em> (it holds whatever the previous scope left), which is what {@link Backend#empty}
 * promises. One scope at a time: opening a second scope on a workspace whose scope is still open throws.
 *
 * <p>Thread-safe. {@link #close()} frees the slab; a closed workspace cannot be used for new scopes.
 */
public final class Workspace implements AutoCloseable {

    /** Granularity of the slab size. */
    static final long ROUND = 1L << 20;
    /** Alignment of the slab (a page). */
    static final long SLAB_ALIGN = 4096;

    private Arena slabArena;          // owns slab; replaced when the slab grows
    private MemorySegment slab;       // null until the first growth
    private long used;                // bytes of the slab handed out to the open scope
    private long demand;              // bytes the open scope asked for in all (incl. what did not fit)
    private TensorScope owner;        // the open scope, or null
    private boolean closed;

    private Workspace() {
    }

    /** An empty workspace (it sizes itself on first use). */
    public static Workspace create() {
        return new Workspace();
    }

    /** Bytes of the slab now (0 before the first scope closed). */
    public synchronized long capacity() {
        return slab == null ? 0 : slab.byteSize();
    }

    /** Whether a scope opened on this workspace is open now (so that {@link #close()} would refuse). */
    public synchronized boolean inUse() {
        return owner != null;
    }

    synchronized void attach(TensorScope scope) {
        if (closed) {
            throw new IllegalStateException("workspace is closed");
        }
        if (owner != null) {
            throw new IllegalStateException("workspace is in use by a scope that is still open");
        }
        owner = scope;
        used = 0;
        demand = 0;
    }

    /**
     * A slice of {@code byteSize} bytes aligned to {@code byteAlignment}, or null when it does not fit (the caller
     * allocates elsewhere); counts the demand either way.
     */
    synchronized MemorySegment take(TensorScope scope, long byteSize, long byteAlignment) {
        if (owner != scope) {
            return null;
        }
        long aligned = demand > Long.MAX_VALUE - Math.max(1, byteAlignment) ? Long.MAX_VALUE
                : alignUp(demand, byteAlignment);
        demand = byteSize > Long.MAX_VALUE - aligned ? Long.MAX_VALUE : aligned + byteSize;   // saturates
        if (slab == null || byteAlignment > SLAB_ALIGN) {
            return null;
        }
        long off = alignUp(used, byteAlignment);
        if (off > slab.byteSize() || byteSize > slab.byteSize() - off) {
            return null;
        }
        used = off + byteSize;
        return slab.asSlice(off, byteSize);
    }

    synchronized void detach(TensorScope scope) {
        if (owner != scope) {
            return;
        }
        owner = null;
        // a demand no slab can meet (a refused huge allocation counted it) keeps the old slab
        if (!closed && demand > capacity() && demand <= Long.MAX_VALUE - ROUND) {
            long size = alignUp(demand, ROUND);
            Arena next = Arena.ofShared();
            MemorySegment s;
            try {
                s = HostMemory.allocate(next, size, SLAB_ALIGN);     // uninitialised: no zeroing pass
            } catch (OutOfMemoryError e) {
                next.close();
                return;       // keep the old slab; scopes fall back to their own arenas
            }
            if (slabArena != null) {
                slabArena.close();
            }
            slabArena = next;
            slab = s;
        }
    }

    private static long alignUp(long v, long align) {
        long a = Math.max(1, align);
        return (v + a - 1) / a * a;
    }

    /**
     * Frees the slab.
     *
     * @throws IllegalStateException when a scope opened on this workspace is still open
     */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        if (owner != null) {
            throw new IllegalStateException("cannot close a workspace while a scope using it is open");
        }
        closed = true;
        if (slabArena != null) {
            slabArena.close();
            slabArena = null;
            slab = null;
        }
    }
}
