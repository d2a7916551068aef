package org.diffusion4j.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.PrintWriter;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.NoSuchFileException;
import java.util.List;

/**
 * The {@code diffusion4j} command-line tool. Each subcommand is its own class in this package.
 * Exit code 0 on success; on failure a one-line reason on stderr and a non-zero code.
 */
@Command(name = "diffusion4j",
        mixinStandardHelpOptions = true,
        versionProvider = Main.Version.class,
        description = "Train and sample diffusion and flow-matching models on the JVM.",
        subcommands = {InfoCommand.class, DemoCommand.class, TrainCommand.class, SampleCommand.class, EvalCommand.class,
                ExportCommand.class,
                CommandLine.HelpCommand.class})
public final class Main implements java.util.concurrent.Callable<Integer> {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** No command given: a usage error (exit 2, usage on stderr), like an unknown command. */
    @Override
    public Integer call() {
        CommandLine cmd = spec.commandLine();
        cmd.getErr().println("diffusion4j: missing command");
        cmd.usage(cmd.getErr());
        cmd.getErr().flush();
        return 2;
    }

    /**
     * Latches of commands that finish their work when the JVM is asked to stop (train: the step in progress and its
     * checkpoint); the shutdown hook deletes temporary files only after they are counted down.
     */
    static final java.util.Set<java.util.concurrent.CountDownLatch> FINISHING =
            java.util.concurrent.ConcurrentHashMap.newKeySet();

    public static void main(String[] args) {
        configureLogging();
        // PNGs are encoded in memory: ImageIO's file cache registers a shutdown hook per stream, which fails while
        // train writes its last checkpoint and plots after Ctrl-C
        javax.imageio.ImageIO.setUseCache(false);
        // Ctrl-C (SIGINT) or SIGTERM in any command: no temporary file of a write in flight stays behind (once a
        // command finishing gracefully, train's last step and checkpoint, is done writing)
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            for (java.util.concurrent.CountDownLatch l : FINISHING) {
                try {
                    l.await(TrainCommand.STOP_WAIT_SECONDS + 5, java.util.concurrent.TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            org.diffusion4j.io.AtomicFiles.deleteInFlight();
        }, "diffusion4j-temporaries"));
        System.exit(execute(args));
    }

    /**
     * The CLI's log format through slf4j-simple (one line per message on stderr, level in brackets, no thread or
     * logger names), set as system properties unless given on the command line: the library jar ships no logging
     * configuration of its own, so that an application's takes effect.
     */
    static void configureLogging() {
        String[][] defaults = {
            {"org.slf4j.simpleLogger.defaultLogLevel", "info"},
            {"org.slf4j.simpleLogger.showThreadName", "false"},
            {"org.slf4j.simpleLogger.showLogName", "false"},
            {"org.slf4j.simpleLogger.levelInBrackets", "true"},
            {"org.slf4j.simpleLogger.logFile", "System.err"},
        };
        for (String[] kv : defaults) {
            if (System.getProperty(kv[0]) == null) {
                System.setProperty(kv[0], kv[1]);
            }
        }
    }

    /** Runs the tool and returns its exit code (for tests). */
    public static int execute(String... args) {
        return execute(null, null, args);
    }

    /**
     * Runs the tool with the given output and error writers (null: the standard streams) and returns its exit code:
     * 0 on success (and for {@code --help} / {@code --version}), 1 when a command fails, 2 for a bad command line
     * (including no command at all). A failure prints one line,
     * {@code diffusion4j COMMAND: reason}, to the error writer; with {@code --verbose} (or the system property
     * {@code d4j.stacktrace=true}) the stack trace follows.
     */
    public static int execute(PrintWriter out, PrintWriter err, String... args) {
        CommandLine cli = new CommandLine(new Main());
        cli.setOverwrittenOptionsAllowed(true);       // the last of a repeated option wins (defaults + override)
        if (out != null) {
            cli.setOut(out);
        }
        if (err != null) {
            cli.setErr(err);
        }
        cli.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            cmd.getErr().println(prefix(cmd) + reason(ex));
            if (Boolean.getBoolean("d4j.stacktrace") || verbose(parsed)) {
                ex.printStackTrace(cmd.getErr());
            }
            cmd.getErr().flush();
            return 1;
        });
        cli.setParameterExceptionHandler((ex, params) -> {
            CommandLine cmd = ex.getCommandLine();
            String msg = ex.getMessage() == null ? ex.getClass().getSimpleName() : ex.getMessage().strip();
            String hint = "";
            if (ex instanceof CommandLine.UnmatchedArgumentException u && !u.getSuggestions().isEmpty()) {
                List<String> s = u.getSuggestions();
                hint = "; did you mean " + String.join(" or ", s.subList(0, Math.min(3, s.size()))) + "?";
            }
            cmd.getErr().println(prefix(cmd) + msg.replace('\n', ' ') + hint + " (see --help)");
            cmd.getErr().flush();
            return 2;
        });
        try {
            return cli.execute(args);
        } catch (OutOfMemoryError e) {
            cli.getErr().println("diffusion4j: out of memory: " + e.getMessage()
                    + " (use smaller sizes, or a larger heap with -Xmx for host arrays)");
            cli.getErr().flush();
            return 1;
        }
    }

    /** {@code "diffusion4j COMMAND: "}, or {@code "diffusion4j: "} for the top-level command. */
    private static String prefix(CommandLine cmd) {
        return cmd.getParent() == null ? cmd.getCommandName() + ": "
                : "diffusion4j " + cmd.getCommandName() + ": ";
    }

    /** A one-line reason for a failure: the message, with the kind of problem for bare file-system exceptions. */
    static String reason(Throwable ex) {
        if (ex instanceof NoSuchFileException e) {
            return e.getReason() != null ? e.getFile() + ": " + e.getReason() : "no such file: " + e.getFile();
        }
        if (ex instanceof AccessDeniedException e) {
            return "permission denied: " + e.getFile();
        }
        if (ex instanceof FileAlreadyExistsException e) {
            return "already exists: " + e.getFile();
        }
        if (ex instanceof ArithmeticException) {
            return "a size is too large (" + (ex.getMessage() == null ? "arithmetic overflow" : ex.getMessage())
                    + "); use smaller sizes (e.g. --n, --resolution, --batch or the model's image size)";
        }
        String msg = ex.getMessage();
        if (msg == null || msg.isBlank()) {
            return ex.getClass().getSimpleName() + (ex.getCause() != null ? ": " + reason(ex.getCause()) : "");
        }
        String line = msg.strip().replace('\n', ' ');
        return ex instanceof IllegalArgumentException || ex instanceof java.io.IOException
                || ex instanceof IllegalStateException ? line : ex.getClass().getSimpleName() + ": " + line;
    }

    private static boolean verbose(CommandLine.ParseResult parsed) {
        for (CommandLine.ParseResult p = parsed; p != null; p = p.subcommand()) {
            if (p.hasMatchedOption("--verbose")) {
                return true;
            }
        }
        return false;
    }

    /** Reports the library version from the jar manifest. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Main.class.getPackage().getImplementationVersion();
            return new String[] {"diffusion4j " + (v == null ? "(development build)" : v),
                    "Java " + Runtime.version() + " (" + System.getProperty("java.vendor") + ")"};
        }
    }
}
