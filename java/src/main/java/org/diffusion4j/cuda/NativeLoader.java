package org.diffusion4j.cuda;

import org.bytedeco.javacpp.Loader;

/**
 * Loads the JNI binding ({@link NativeLib}) and {@code libdiffusion4j.so} once, turning every failure into
 * a reason instead of an error.
 *
 * <p>JavaCPP reports a missing or unloadable library as a {@link LinkageError}: {@link UnsatisfiedLinkError}
 * at the first attempt and {@link NoClassDefFoundError} at later touches of a class whose initialisation
 * failed. Both are caught here, at the first touch, and nowhere else.
 */
final class NativeLoader {

    private NativeLoader() {
    }

    /**
     * The outcome of loading a binding class: {@code failure} is null on success; {@code packaged} tells
     * whether the JNI library was found on the class path at all.
     */
    record Outcome(boolean loaded, boolean packaged, String failure) {
        static final Outcome OK = new Outcome(true, true, null);

        static Outcome failed(boolean packaged, String why) {
            return new Outcome(false, packaged, why);
        }
    }

    private static volatile Outcome outcome;

    /** Loads {@link NativeLib} on the first call; later calls return the same outcome. Never throws. */
    static Outcome load() {
        Outcome o = outcome;
        if (o == null) {
            synchronized (NativeLoader.class) {
                o = outcome;
                if (o == null) {
                    o = tryLoad(NativeLib.class);
                    if (o.loaded()) {
                        o = checkVersion();
                    }
                    outcome = o;
                }
            }
        }
        return o;
    }

    /**
     * Loads the JavaCPP binding {@code binding} (its {@code @Platform} link libraries, then its JNI library).
     * Package-private so that tests can point it at a binding whose library does not exist.
     */
    static Outcome tryLoad(Class<?> binding) {
        String jni = System.mapLibraryName("jni" + binding.getSimpleName());
        String platform;
        try {
            platform = Loader.getPlatform();
        } catch (LinkageError | RuntimeException e) {
            return Outcome.failed(false, "JavaCPP is not usable here: " + e);
        }
        String resource = binding.getPackageName().replace('.', '/') + "/" + platform + "/" + jni;
        boolean packaged = binding.getClassLoader() != null && binding.getClassLoader().getResource(resource) != null;
        try {
            Loader.load(binding);
            return Outcome.OK;
        } catch (LinkageError | RuntimeException e) {
            if (!packaged) {
                return Outcome.failed(false, "this build has no native CUDA library for " + platform + " (" + resource
                        + " is not on the class path; it is built only where nvcc was found): " + firstLine(e));
            }
            return Outcome.failed(true, "the native CUDA library " + resource + " failed to load: " + firstLine(e));
        }
    }

    private static Outcome checkVersion() {
        try {
            int v = NativeLib.d4j_version();
            if (v <= 0) {
                return Outcome.failed(true, "libdiffusion4j reports version " + v);
            }
            return Outcome.OK;
        } catch (LinkageError e) {
            return Outcome.failed(true, "libdiffusion4j loaded but d4j_version is missing: " + firstLine(e));
        }
    }

    /** {@code major.minor.patch} of the loaded library, e.g. {@code "0.1.0"}; call only after a successful load. */
    static String version() {
        int v = NativeLib.d4j_version();
        return (v / 10000) + "." + (v / 100 % 100) + "." + (v % 100);
    }

    static String firstLine(Throwable e) {
        String m = e.getClass().getSimpleName() + ": " + e.getMessage();
        int nl = m.indexOf('\n');
        return nl < 0 ? m : m.substring(0, nl);
    }
}
