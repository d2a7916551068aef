package org.diffusion4j.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import org.diffusion4j.io.AtomicFiles;
import org.diffusion4j.io.FileFormatException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code run.json}: what a training run is (the options it was started with, the data, the model and the training
 * configuration, versions and backend) and what it measured (wall time, final loss, images/s, metrics). Written
 * atomically at the start, at every checkpoint and at the end; {@code --resume} reads it back.
 *
 * @param format   {@value #FORMAT}
 * @param status   {@code running}, {@code complete}, {@code failed} or {@code interrupted} (SIGINT/SIGTERM: set by
 *                 the shutdown hook of {@code train})
 * @param options  the {@code train} options in effect
 * @param versions diffusion4j, Java and OS versions
 * @param backend  the backend's name
 * @param data     the data
 * @param model    the model
 * @param training the {@link org.diffusion4j.training.TrainingConfig} as JSON
 * @param results  measured numbers (updated as the run goes)
 */
record RunJson(String format, String status, TrainOptions options, Map<String, String> versions, String backend,
               DataInfo data, ModelInfo model, JsonNode training, Results results) {

    static final String FORMAT = "diffusion4j-run-1";

    static final JsonMapper JSON = JsonMapper.builder()
            .enable(SerializationFeature.INDENT_OUTPUT)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .build();

    /**
     * The {@code train} options (component names are the option names in camel case).
     */
    record TrainOptions(String data, String model, int hidden, int depth, int heads, int patch, int blocks,
                        String objective, String schedule, String timeSampler, String lossWeight, long steps, int batch,
                        double lr, double minLr, long warmup, double weightDecay, double ema, double gradClip,
                        boolean cond, double labelDropout, long seed, double heldOut, int resolution, int channels,
                        long checkpointEvery, long sampleEvery, int sampleSteps, String sampler, double guidance,
                        boolean randomFlip, boolean standardize, String labelColumn, int microBatch,
                        String initFrom, Long heldOutLossEvery, Integer keepCheckpoints) {

        /** These options with {@code model} (e.g. the choice of {@code --model auto}). */
        TrainOptions withModel(String m) {
            return with("model", m);
        }

        /**
         * These options with the component {@code name} set to {@code value} (boxed as the component's type).
         *
         * @throws IllegalArgumentException for an unknown component or a value of the wrong type
         */
        TrainOptions with(String name, Object value) {
            java.lang.reflect.RecordComponent[] comps = TrainOptions.class.getRecordComponents();
            Object[] values = new Object[comps.length];
            boolean found = false;
            try {
                for (int i = 0; i < comps.length; i++) {
                    found |= comps[i].getName().equals(name);
                    values[i] = comps[i].getName().equals(name) ? value : comps[i].getAccessor().invoke(this);
                }
                if (!found) {
                    throw new IllegalArgumentException("no train option " + name);
                }
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(e);
            }
            return ofComponents(values);
        }

        /**
         * The options from their component values in declaration order (what {@code --resume} merges).
         *
         * @throws IllegalArgumentException for a value of the wrong type
         */
        static TrainOptions ofComponents(Object[] values) {
            try {
                return TrainOptions.class.getDeclaredConstructor(java.util.Arrays.stream(
                        TrainOptions.class.getRecordComponents()).map(java.lang.reflect.RecordComponent::getType)
                        .toArray(Class<?>[]::new)).newInstance(values);
            } catch (ReflectiveOperationException e) {
                throw new IllegalArgumentException("cannot build the train options from " + java.util.Arrays
                        .toString(values), e);
            }
        }
    }

    /**
     * The data as the run saw it; {@code fingerprint} ({@link DataLoading.Loaded#fingerprint()}: sample counts,
     * shape and a CRC-32 of every value and label) lets {@code --resume} and {@code eval} notice changed data (null
     * in runs written before it existed: not checked).
     */
    record DataInfo(String path, String kind, long[] sampleShape, int train, int heldOut, String heldOutFrom,
                    int numClasses, List<String> classNames, String fingerprint) {
    }

    /**
     * Where a model's data came from and how it was split: what {@code eval} needs to score a checkpoint against the
     * held-out part of the data it trained on. Taken from run.json in a run folder; written into every checkpoint by
     * {@code train} ({@link org.diffusion4j.training.Checkpoint#KEY_DATA_SOURCE}), so an exported file outside the
     * run folder keeps it.
     *
     * @param fingerprint the data's {@link DataLoading.Loaded#fingerprint()}, or null (not checked)
     */
    record DataSource(String data, String fingerprint, double heldOut, long seed, String labelColumn, int resolution,
                      int channels) {

        static DataSource of(TrainOptions o, String fingerprint) {
            return new DataSource(o.data(), fingerprint, o.heldOut(), o.seed(), o.labelColumn(), o.resolution(),
                    o.channels());
        }

        String toJson() {
            try {
                return JSON.writer().without(SerializationFeature.INDENT_OUTPUT).writeValueAsString(this);
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new IllegalStateException(e);
            }
        }

        /**
         * @throws IllegalArgumentException when {@code json} is not such a record with every field present and valid
         *                                  (a data path, held-out fraction in (0, 1), resolution 1 .. 4096, channels
         *                                  auto, 1 or 3)
         */
        static DataSource fromJson(String json) {
            JsonNode n;
            try {
                n = JSON.readTree(json);
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new IllegalArgumentException("not JSON (" + e.getOriginalMessage() + ")", e);
            }
            if (n == null || !n.isObject()) {
                throw new IllegalArgumentException("not a JSON object");
            }
            for (String field : List.of("data", "heldOut", "seed", "resolution", "channels")) {
                if (!n.hasNonNull(field)) {
                    throw new IllegalArgumentException("field " + field + " is missing");
                }
            }
            if (!n.get("data").isTextual() || n.get("data").asText().isEmpty() || !n.get("heldOut").isNumber()
                    || !n.get("seed").canConvertToLong() || !n.get("resolution").canConvertToInt()
                    || !n.get("channels").canConvertToInt()) {
                throw new IllegalArgumentException("fields of the wrong type in " + json);
            }
            DataSource d = new DataSource(n.get("data").asText(),
                    n.hasNonNull("fingerprint") ? n.get("fingerprint").asText() : null, n.get("heldOut").asDouble(),
                    n.get("seed").asLong(), n.hasNonNull("labelColumn") ? n.get("labelColumn").asText() : null,
                    n.get("resolution").asInt(), n.get("channels").asInt());
            if (!(d.heldOut() > 0 && d.heldOut() < 1) || d.resolution() < 1 || d.resolution() > 4096
                    || (d.channels() != 0 && d.channels() != 1 && d.channels() != 3)) {
                throw new IllegalArgumentException("values out of range in " + json);
            }
            return d;
        }

        /** Whether {@code other} describes the same data and split (the data may lie elsewhere). */
        boolean sameSplit(DataSource other) {
            return java.util.Objects.equals(fingerprint, other.fingerprint) && heldOut == other.heldOut
                    && seed == other.seed && java.util.Objects.equals(labelColumn, other.labelColumn)
                    && resolution == other.resolution && channels == other.channels;
        }
    }

    /** The model: its {@link org.diffusion4j.nn.Models} kind, configuration JSON and parameter count. */
    record ModelInfo(String kind, JsonNode config, long parameters) {
    }

    /**
     * Measured numbers.
     *
     * @param steps            completed steps
     * @param wallSeconds      wall time of the whole run so far (all sessions, including data loading, checkpoints
     *                         and sample grids), seconds
     * @param trainSeconds     time spent in training steps only, seconds
     * @param finalLoss        mean loss over the last 10% of steps (at most 1000) of this session
     * @param imagesPerSecond  samples per second of training-step time
     * @param msPerStep        milliseconds per training step
     * @param latestCheckpoint relative path of the newest checkpoint, or null
     * @param latestGrid       relative path of the newest sample grid, or null
     * @param metrics          quality metrics (written by {@code eval}), may be empty
     * @param metricsStep      the step of the checkpoint {@code metrics} were measured on, or null (none, or metrics
     *                         of saved samples)
     * @param heldOutLoss      the newest held-out loss ({@code train --held-out-loss-every}), or null
     * @param heldOutLossStep  the step {@code heldOutLoss} was measured after, or null
     */
    record Results(long steps, double wallSeconds, double trainSeconds, double finalLoss, double imagesPerSecond,
                   double msPerStep, String latestCheckpoint, String latestGrid, Map<String, Double> metrics,
                   Long metricsStep, Double heldOutLoss, Long heldOutLossStep) {

        Results withLatestGrid(String grid) {
            return new Results(steps, wallSeconds, trainSeconds, finalLoss, imagesPerSecond, msPerStep,
                    latestCheckpoint, grid, metrics, metricsStep, heldOutLoss, heldOutLossStep);
        }

        Results withHeldOutLoss(double loss, long step) {
            return new Results(steps, wallSeconds, trainSeconds, finalLoss, imagesPerSecond, msPerStep,
                    latestCheckpoint, latestGrid, metrics, metricsStep, loss, step);
        }

        static Results empty() {
            return new Results(0, 0, 0, Double.NaN, Double.NaN, Double.NaN, null, null, new LinkedHashMap<>(), null,
                    null, null);
        }
    }

    RunJson withStatus(String s) {
        return new RunJson(format, s, options, versions, backend, data, model, training, results);
    }

    RunJson withResults(Results r) {
        return new RunJson(format, status, options, versions, backend, data, model, training, r);
    }

    RunJson withOptions(TrainOptions o) {
        return new RunJson(format, status, o, versions, backend, data, model, training, results);
    }

    RunJson withBackend(String b) {
        return new RunJson(format, status, options, versions, b, data, model, training, results);
    }

    /** Writes this record to {@code file} atomically. NaN and infinite numbers are written as null. */
    void write(Path file) throws IOException {
        AtomicFiles.writeBytes(file, toJson().getBytes(StandardCharsets.UTF_8));
    }

    String toJson() {
        try {
            JsonNode tree = JSON.valueToTree(this);
            return JSON.writeValueAsString(finiteOnly(tree)) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write run.json", e);
        }
    }

    /** Replaces NaN/infinite numbers by null (JSON has no NaN). */
    private static JsonNode finiteOnly(JsonNode n) {
        if (n.isObject()) {
            var o = (com.fasterxml.jackson.databind.node.ObjectNode) n;
            List<String> nulls = new java.util.ArrayList<>();
            for (var e : o.properties()) {
                if (e.getValue().isNumber() && !Double.isFinite(e.getValue().asDouble())) {
                    nulls.add(e.getKey());
                } else {
                    finiteOnly(e.getValue());
                }
            }
            for (String k : nulls) {
                o.putNull(k);
            }
        } else if (n.isArray()) {
            for (JsonNode c : n) {
                finiteOnly(c);
            }
        }
        return n;
    }

    /**
     * Reads {@code file}.
     *
     * @throws FileFormatException when it is not a run.json of this format
     */
    static RunJson read(Path file) throws IOException {
        String text = Files.readString(file, StandardCharsets.UTF_8);
        RunJson r;
        try {
            r = JSON.readValue(text, RunJson.class);
        } catch (JsonProcessingException e) {
            throw new FileFormatException(file, "is not a valid run.json: " + e.getOriginalMessage());
        }
        if (!FORMAT.equals(r.format()) || r.options() == null || r.training() == null || r.model() == null) {
            throw new FileFormatException(file, "is not a diffusion4j run.json (format " + r.format() + ")");
        }
        return r;
    }

    /** diffusion4j, Java and OS versions. */
    static Map<String, String> currentVersions() {
        Map<String, String> v = new LinkedHashMap<>();
        String impl = Main.class.getPackage().getImplementationVersion();
        v.put("diffusion4j", impl == null ? "development build" : impl);
        v.put("java", Runtime.version() + " (" + System.getProperty("java.vendor") + ")");
        v.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version") + " "
                + System.getProperty("os.arch"));
        v.put("cpus", Integer.toString(Runtime.getRuntime().availableProcessors()));
        return v;
    }
}
