package org.diffusion4j.cli;

import org.diffusion4j.tensor.DType;
import org.diffusion4j.training.Checkpoint;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code export}: writes the weights of a checkpoint (EMA averages by default) as a weights-only safetensors file
 * ({@link Checkpoint#exportWeights(Path, Checkpoint.Loaded, DType)}): the plain state-dict names of the reference
 * layout, which PyTorch loads with {@code load_state_dict} and {@code sample}/{@code eval} read like a checkpoint;
 * without the optimizer state and the second copy of the weights, so a quarter of a training checkpoint with an EMA
 * (an eighth in BF16). What a run folder knows beside an older checkpoint (class names, the image shape of a
 * flattened MLP) is written into the export, which must work on its own.
 */
@Command(name = "export", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Write a checkpoint's weights (EMA by default) as a weights-only safetensors file for PyTorch "
                + "(load_state_dict) or for sample/eval; no optimizer state.")
final class ExportCommand implements Callable<Integer> {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--checkpoint", required = true, description = "a checkpoint file or a run folder (its latest)")
    Path checkpoint;

    @Option(names = "--out", required = true, description = "the .safetensors file to write")
    Path out;

    @Option(names = "--weights", defaultValue = "auto", description = "auto (EMA when present), ema or raw "
            + "(default: ${DEFAULT-VALUE})")
    String weights;

    @Option(names = "--dtype", defaultValue = "f32", description = "f32 (exact), bf16 or f16 (half the size, "
            + "rounded) (default: ${DEFAULT-VALUE})")
    String dtype;

    @Mixin
    RuntimeOptions runtime;

    @Override
    public Integer call() throws IOException {
        PrintWriter o = spec.commandLine().getOut();
        DType d = switch (dtype.trim().toLowerCase(Locale.ROOT)) {
            case "f32", "float32" -> DType.F32;
            case "bf16", "bfloat16" -> DType.BF16;
            case "f16", "float16", "half" -> DType.F16;
            default -> throw new IllegalArgumentException("--dtype must be f32, bf16 or f16, got '" + dtype + "'");
        };
        if (!out.getFileName().toString().toLowerCase(Locale.ROOT).endsWith(".safetensors")) {
            throw new IllegalArgumentException("--out " + out + " must end in .safetensors");
        }
        SampleCommand.requireWritable("--out", out, ".safetensors");
        Path parentOfOut = out.toAbsolutePath().normalize().getParent();
        if (parentOfOut != null && parentOfOut.getFileName() != null
                && parentOfOut.getFileName().toString().equals("checkpoints") && parentOfOut.getParent() != null
                && Files.isRegularFile(parentOfOut.getParent().resolve("run.json"))) {
            throw new IllegalArgumentException("--out " + out + " lies in a run's checkpoints folder, which holds "
                    + "training checkpoints only; write the export elsewhere");
        }
        if (Files.isRegularFile(out) && Files.size(out) > 0) {
            Checkpoint.Info existing;
            try {
                existing = Checkpoint.readInfo(out);
            } catch (IOException | RuntimeException e) {
                throw new IllegalArgumentException("--out " + out + " exists and is not a safetensors file; refusing "
                        + "to overwrite it (delete it or choose another name)");
            }
            if (existing.hasOptimizer()) {
                throw new IllegalArgumentException("--out " + out + " is a training checkpoint (it holds optimizer "
                        + "state): refusing to overwrite it; give another file");
            }
        }
        try (ModelSession s = ModelSession.open(checkpoint, runtime, weights)) {
            if (Files.exists(out) && Files.isSameFile(out, s.file)) {
                throw new IllegalArgumentException("--out " + out + " is the checkpoint being exported");
            }
            o.println("checkpoint  " + s.file + ": " + s.describe());
            Map<String, String> known = new LinkedHashMap<>();
            if (!s.classNames().isEmpty()) {
                known.put(Checkpoint.KEY_CLASS_NAMES, Checkpoint.classNamesJson(s.classNames()));
            }
            RunJson.DataSource source = s.dataSource();
            if (source != null) {
                known.put(Checkpoint.KEY_DATA_SOURCE, source.toJson());
            }
            String initFrom = s.metadata().get(Checkpoint.KEY_INIT_FROM);
            if (initFrom != null) {
                known.put(Checkpoint.KEY_INIT_FROM, initFrom);
            }
            long[] image = s.imageShape();
            if (image != null && s.model().sampleShape().length == 1) {
                known.put(Checkpoint.KEY_DATA_IMAGE_SHAPE, Arrays.toString(image));   // [C, H, W]: JSON
            }
            Path parent = out.toAbsolutePath().normalize().getParent();
            Path created = parent == null ? null : SampleCommand.firstMissing(parent);
            // leave no folders made for a file never written: on an error, and on Ctrl-C
            Thread hook = new Thread(() -> {
                if (!Files.exists(out)) {
                    org.diffusion4j.io.AtomicFiles.deleteInFlight();
                    SampleCommand.removeCreated(parent, created);
                }
            }, "diffusion4j-export-shutdown");
            Runtime.getRuntime().addShutdownHook(hook);
            SampleCommand.createParent(out);
            try {
                Checkpoint.exportWeights(out, s.loaded, d, known);
            } catch (IOException | RuntimeException e) {
                SampleCommand.removeCreated(parent, created);
                throw e;
            } finally {
                try {
                    Runtime.getRuntime().removeShutdownHook(hook);
                } catch (IllegalStateException ignored) {
                    // the JVM is shutting down: the hook runs
                }
            }
            o.printf(Locale.ROOT, "exported    %,d parameters, %s weights as %s: %s (%.1f MB)%n",
                    s.model().module().parameterCount(), s.loaded.emaUsed() ? "EMA" : "raw", d,
                    out.toAbsolutePath().normalize(), Files.size(out) / 1e6);
            o.flush();
            return 0;
        }
    }
}
