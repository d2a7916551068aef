package org.diffusion4j.cli;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.cuda.CudaRuntime;
import org.diffusion4j.io.Safetensors;
import org.diffusion4j.io.SafetensorsHeader;
import org.diffusion4j.tensor.Backend;
import org.diffusion4j.training.Checkpoint;
import org.diffusion4j.training.TrainingConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;

/** {@code info}: backends found, why CUDA is or is not used, versions; or what a checkpoint holds. */
@Command(name = "info", mixinStandardHelpOptions = true,
        description = "Print the backends found, why CUDA is or is not used, and versions; with --checkpoint, what a "
                + "checkpoint or export holds (model, training, step, classes, data, tensors) without loading it.")
final class InfoCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--checkpoint", description = "a checkpoint or export (.safetensors), or a run folder (its latest "
            + "checkpoint)")
    Path checkpoint;

    @Override
    public Integer call() throws IOException {
        PrintWriter o = spec.commandLine().getOut();
        if (checkpoint != null) {
            describe(o, RunFolder.resolveCheckpoint(checkpoint));
            o.flush();
            return 0;
        }
        o.println("diffusion4j " + new Main.Version().getVersion()[0].replace("diffusion4j ", ""));
        o.println("java        " + Runtime.version() + " (" + System.getProperty("java.vendor") + "), "
                + Runtime.getRuntime().availableProcessors() + " processors");
        try (Backend cpu = new CpuBackend()) {
            o.println("cpu         " + cpu.name());
        }
        CudaRuntime.Status cuda = CudaRuntime.probe(0);
        o.println("cuda        " + (cuda.usable() ? "usable: " : "not used: ") + cuda.description());
        o.println("auto        " + (cuda.usable() ? "cuda:0" : "cpu") + "  (what --backend auto picks here)");
        o.flush();
        return 0;
    }

    /** The header and metadata of {@code file}, read and checked as {@code sample} would, without its tensors. */
    static void describe(PrintWriter o, Path file) throws IOException {
        SafetensorsHeader header = Safetensors.readHeader(file);
        Checkpoint.Info info = Checkpoint.readInfo(file);
        o.println("file        " + file.toAbsolutePath().normalize() + " (" + String.format(Locale.ROOT, "%,d",
                Files.size(file)) + " bytes)");
        String kind = info.training() == null ? "weights without a training configuration (sample and eval need one)"
                : info.hasOptimizer() && info.metadata().containsKey(TrainCommand.KEY_HELD_OUT_LOSS)
                ? "training checkpoint of the run's lowest held-out loss (train --resume continues from "
                + "latest.safetensors; --init-from this file trains on from here)"
                : info.hasOptimizer() ? "training checkpoint (with optimizer state: train --resume continues the run "
                + "folder it belongs to, Trainer.restore any trainer of the same model and seed; --init-from this "
                + "file starts a new run from its weights)"
                : "export of " + ("ema".equals(info.metadata().get(Checkpoint.KEY_WEIGHTS)) ? "EMA" : "raw")
                + " weights";
        o.println("kind        " + kind);
        if (info.modelKind() != null) {
            o.println("model       " + info.modelKind() + " " + info.modelConfig());
        }
        long params = 0;
        Map<String, Long> dtypes = new TreeMap<>();
        for (SafetensorsHeader.Entry e : header.entries()) {
            if (e.name().startsWith("ema.") || e.name().startsWith("optim.")) {
                continue;
            }
            long n = Arrays.stream(e.shape()).reduce(1, Math::multiplyExact);
            params += n;
            dtypes.merge(e.dtype().toString(), n, Long::sum);
        }
        long tensors = header.entries().stream()
                .filter(e -> !e.name().startsWith("ema.") && !e.name().startsWith("optim.")).count();
        long buffer = header.entries().stream().filter(e -> e.name().equals(Checkpoint.POS_EMBED))
                .mapToLong(e -> Arrays.stream(e.shape()).reduce(1, Math::multiplyExact)).sum();
        o.printf(Locale.ROOT, "weights     %,d values in %d tensor%s%s%s%s%n", params, tensors, tensors == 1 ? "" : "s",
                dtypes.isEmpty() ? "" : " (" + String.join(", ", dtypes.keySet()) + ")",
                buffer == 0 ? "" : String.format(Locale.ROOT, ": %,d trained parameters and the fixed %,d-value "
                        + "pos_embed", params - buffer, buffer),
                info.hasEma() ? " + their EMA averages" : "");
        if (info.metadata().containsKey(Checkpoint.KEY_STEP)) {
            o.printf(Locale.ROOT, "step        %d (seed %d)%n", info.step(), info.seed());
        } else {
            o.println("step        (not recorded: a file without diffusion4j's metadata)");
        }
        TrainingConfig t = info.training();
        if (t != null) {
            o.printf(Locale.ROOT, "training    objective %s, schedule %s, time sampler %s, loss weight %s, batch %d, "
                            + "lr %.3g, %d planned steps, label dropout %.3g%s%s%n",
                    t.objective().name().toLowerCase(Locale.ROOT), t.schedule(), t.timeSampler(), t.lossWeight(),
                    t.batchSize(), t.learningRate(), t.totalSteps(), t.labelDropout(),
                    t.randomFlip() ? ", random flips" : "",
                    t.microBatches() > 1 ? ", micro-batches of " + t.microBatch() : "");
        }
        int classes = info.modelConfig() == null ? 0
                : RunJson.JSON.readTree(info.modelConfig()).path("numClasses").asInt(0);
        if (!info.classNames().isEmpty()) {
            o.println("classes     " + info.classNames().size() + ": "
                    + DataLoading.listNames(info.classNames(), 20, true));
        } else if (classes > 0) {
            o.println("classes     " + classes + " (without names: sample --class takes 0.." + (classes - 1) + ")");
        }
        if (!info.featureNames().isEmpty()) {
            o.println("features    " + String.join(", ", info.featureNames()));
        }
        if (info.imageShape() != null) {
            o.println("images      " + Arrays.toString(info.imageShape()) + " (trained flattened)");
        }
        if (info.standardization() != null) {
            o.println("scaling     per-feature standardisation (samples are mapped back to the data's units)");
        }
        String bestLoss = info.metadata().get(TrainCommand.KEY_HELD_OUT_LOSS);
        if (bestLoss != null) {
            String shown = bestLoss;
            try {
                shown = String.format(Locale.ROOT, "%.4f", Double.parseDouble(bestLoss));   // as train prints it
            } catch (NumberFormatException e) {
                // a hand-edited value: shown as it is
            }
            o.println("held-out    loss " + shown + " at step " + info.step() + ": the run's lowest when written "
                    + "(train's checkpoints/best.safetensors)");
        }
        String initFrom = info.metadata().get(Checkpoint.KEY_INIT_FROM);
        if (initFrom != null) {
            o.println("fine-tuned  from " + initFrom);
        }
        String source = info.metadata().get(Checkpoint.KEY_DATA_SOURCE);
        if (source != null) {
            RunJson.DataSource d = RunJson.DataSource.fromJson(source);
            java.nio.file.Path dataPath = d.data() == null ? null : java.nio.file.Path.of(d.data());
            boolean t10k = dataPath != null && java.nio.file.Files.isDirectory(dataPath)
                    && DataLoading.hasTestSplit(dataPath);
            o.println("data        " + d.data() + " (held out " + (t10k ? "its t10k split" : d.heldOut() + ", seed "
                    + d.seed()) + (d.fingerprint() != null ? ", " + d.fingerprint() : "") + ")");
        }
    }
}
