package org.diffusion4j.nn;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;

import org.diffusion4j.nn.attention.AttentionOps;
import org.diffusion4j.tensor.TensorScope;

import java.util.List;
import java.util.Objects;

/**
 * Builds a {@link DenoiserModel} from a model kind and its configuration as JSON, the form in which checkpoints
 * ({@code org.diffusion4j.training.Checkpoint}, metadata {@code d4j.model.kind} and {@code d4j.model.config}) and
 * the command-line tool describe a model.
 *
 * <table>
 *   <caption>Kinds</caption>
 *   <tr><th>kind</th><th>configuration record</th></tr>
 *   <tr><td>{@value #MLP}</td><td>{@link MlpDenoiser.Config}</td></tr>
 *   <tr><td>{@value #DIT}</td><td>{@link DiT.Config}</td></tr>
 * </table>
 *
 * <p>A configuration is the Jackson serialisation of the record (its component names as JSON fields); parsing is
 * strict: an unknown field, a missing required field or a value the record's constructor refuses is an
 * {@link IllegalArgumentException} naming the kind and the problem.
 */
public final class Models {

    /** Kind of {@link MlpDenoiser}. */
    public static final String MLP = "mlp";

    /** Kind of {@link DiT} (Peebles &amp; Xie 2023). */
    public static final String DIT = "dit";

    private static final JsonMapper JSON = JsonMapper.builder()
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
            .enable(DeserializationFeature.FAIL_ON_MISSING_CREATOR_PROPERTIES)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    private Models() {
    }

    /** The kinds this build can construct. */
    public static List<String> kinds() {
        return List.of(MLP, DIT);
    }

    /**
     * Parses the configuration record of {@code kind} from JSON.
     *
     * @return e.g. an {@link MlpDenoiser.Config}
     * @throws IllegalArgumentException for an unknown kind, malformed JSON, an unknown or missing field, or a value
     *                                  the configuration refuses
     */
    public static Record parseConfig(String kind, String json) {
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(json, "json");
        Class<? extends Record> type = switch (kind) {
            case MLP -> MlpDenoiser.Config.class;
            case DIT -> DiT.Config.class;
            default -> throw new IllegalArgumentException("unknown model kind '" + kind + "'; this build knows "
                    + kinds());
        };
        try {
            com.fasterxml.jackson.databind.JsonNode node = JSON.readTree(json);
            if (type == MlpDenoiser.Config.class && node instanceof com.fasterxml.jackson.databind.node.ObjectNode o
                    && !o.has("numClasses")) {
                o.put("numClasses", 0);                 // written before conditional MLPs existed: unconditional
            }
            return JSON.treeToValue(node, type);
        } catch (JsonProcessingException e) {
            Throwable cause = rootCause(e);
            String why = cause instanceof IllegalArgumentException ? cause.getMessage() : e.getOriginalMessage();
            throw new IllegalArgumentException("bad '" + kind + "' model config " + json + ": " + why, e);
        }
    }

    /**
     * The kind of a configuration record.
     *
     * @throws IllegalArgumentException for a record that is no model configuration of this build
     */
    public static String kindOf(Record config) {
        Objects.requireNonNull(config, "config");
        if (config instanceof MlpDenoiser.Config) {
            return MLP;
        }
        if (config instanceof DiT.Config) {
            return DIT;
        }
        throw new IllegalArgumentException("not a model configuration: " + config.getClass().getName());
    }

    /**
     * The configuration record of {@code model}.
     *
     * @throws IllegalArgumentException for a model type this class does not know
     */
    public static Record configOf(DenoiserModel model) {
        Objects.requireNonNull(model, "model");
        if (model instanceof MlpDenoiser m) {
            return m.config();
        }
        if (model instanceof DiT d) {
            return d.config();
        }
        throw new IllegalArgumentException("unknown model type " + model.getClass().getName() + "; this build knows "
                + kinds());
    }

    /**
     * {@code config} with another class count: {@code numClasses} classes (0: unconditional) and, for a DiT, the
     * label-dropout probability {@code classDropProb} (0 when unconditional). Only the class embedder
     * ({@code y_embedder.*}) depends on these fields.
     *
     * @throws IllegalArgumentException for an unknown configuration type or invalid values (as the record's
     *                                  constructor checks them)
     */
    public static Record withClasses(Record config, int numClasses, double classDropProb) {
        Objects.requireNonNull(config, "config");
        if (config instanceof MlpDenoiser.Config m) {
            return m.withClasses(numClasses);
        }
        if (config instanceof DiT.Config d) {
            return new DiT.Config(d.imageSize(), d.channels(), d.patch(), d.hidden(), d.depth(), d.heads(),
                    d.mlpRatio(), numClasses, numClasses == 0 ? 0.0 : classDropProb, d.frequencyDim(), d.timeScale());
        }
        throw new IllegalArgumentException("not a model configuration: " + config.getClass().getName());
    }

    /**
     * The class count of a configuration record (0: unconditional).
     *
     * @throws IllegalArgumentException for an unknown configuration type
     */
    public static int numClasses(Record config) {
        Objects.requireNonNull(config, "config");
        if (config instanceof MlpDenoiser.Config m) {
            return m.numClasses();
        }
        if (config instanceof DiT.Config d) {
            return d.numClasses();
        }
        throw new IllegalArgumentException("not a model configuration: " + config.getClass().getName());
    }

    /**
     * Elements of the state dict a configuration record gives (parameters and buffers), without building the model.
     *
     * @throws IllegalArgumentException for an unknown configuration type
     */
    public static long stateDictNumel(Record config) {
        Objects.requireNonNull(config, "config");
        if (config instanceof MlpDenoiser.Config m) {
            return m.stateDictNumel();
        }
        if (config instanceof DiT.Config d) {
            return d.stateDictNumel();
        }
        throw new IllegalArgumentException("not a model configuration: " + config.getClass().getName());
    }

    /** {@code Σ terms}, throwing {@link ArithmeticException} on overflow. */
    static long sum(long... terms) {
        long s = 0;
        for (long t : terms) {
            s = Math.addExact(s, t);
        }
        return s;
    }

    /** Whether {@code model} is one of this build's model kinds (so that checkpoints can rebuild it). */
    public static boolean isBuiltIn(DenoiserModel model) {
        return model instanceof MlpDenoiser || model instanceof DiT;
    }

    /** The kind of {@code model} ({@code kindOf(configOf(model))}). */
    public static String kindOf(DenoiserModel model) {
        return kindOf(configOf(model));
    }

    /**
     * A configuration record as JSON (compact, one line).
     *
     * @throws NullPointerException     when {@code config} is null
     * @throws IllegalArgumentException for a record that is no model configuration of this build
     * @throws IllegalStateException    when Jackson cannot serialise the record
     */
    public static String toJson(Record config) {
        Objects.requireNonNull(config, "config");
        kindOf(config);
        try {
            return JSON.writeValueAsString(config);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot serialise " + config, e);
        }
    }

    /** The configuration of {@code model} as JSON. */
    public static String configJson(DenoiserModel model) {
        return toJson(configOf(model));
    }

    /**
     * A fresh model of {@code kind} whose parameters (and buffers) live in {@code scope}, initialised from
     * {@code seed} as the model's constructor documents.
     *
     * @param attention attention ops on {@code ops}' backend, needed by {@value #DIT} (the caller keeps ownership
     *                  and closes them after the model's last use); may be null for {@value #MLP}
     * @throws NullPointerException     when {@code ops} or {@code scope} is null
     * @throws IllegalArgumentException see {@link #parseConfig}, or a DiT without attention ops or with attention ops
     *                                  on another device than {@code ops}
     * @throws IllegalStateException    when {@code scope} is closed
     */
    public static DenoiserModel create(String kind, String configJson, NnOps ops, AttentionOps attention,
                                       TensorScope scope, long seed) {
        return create(parseConfig(kind, configJson), ops, attention, scope, seed);
    }

    /**
     * A fresh model for a configuration record (see {@link #create(String, String, NnOps, AttentionOps,
     * TensorScope, long)}).
     *
     * @throws NullPointerException     when {@code config}, {@code ops} or {@code scope} is null
     * @throws IllegalArgumentException for a record that is no model configuration, or a DiT without attention ops
     *                                  or with attention ops on another device than {@code ops}
     * @throws IllegalStateException    when {@code scope} is closed
     */
    public static DenoiserModel create(Record config, NnOps ops, AttentionOps attention, TensorScope scope,
                                       long seed) {
        Objects.requireNonNull(config, "config");
        Objects.requireNonNull(ops, "ops");
        Objects.requireNonNull(scope, "scope");
        if (config instanceof MlpDenoiser.Config c) {
            return new MlpDenoiser(ops, scope, c, seed);
        }
        if (config instanceof DiT.Config c) {
            if (attention == null) {
                throw new IllegalArgumentException("a DiT needs attention ops (AttentionOps.forBackend)");
            }
            return new DiT(ops, attention, scope, c, seed);
        }
        throw new IllegalArgumentException("not a model configuration: " + config.getClass().getName());
    }

    private static Throwable rootCause(Throwable t) {
        Throwable c = t;
        while (c.getCause() != null && c.getCause() != c) {
            c = c.getCause();
        }
        return c;
    }
}
