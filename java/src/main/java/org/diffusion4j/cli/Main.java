package org.diffusion4j.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code diffusion4j} command-line tool. Each subcommand is its own class in this package.
 * Exit code 0 on success; on failure a one-line reason on stderr and a non-zero code.
 */
@Command(name = "diffusion4j",
        mixinStandardHelpOptions = true,
        versionProvider = Main.Version.class,
        description = "Train and sample diffusion and flow-matching models on the JVM.",
        subcommands = {InfoCommand.class, DemoCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    public static void main(String[] args) {
        System.exit(execute(args));
    }

    /** Runs the tool and returns its exit code (for tests). */
    public static int execute(String... args) {
        CommandLine cli = new CommandLine(new Main());
        cli.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            String msg = ex.getMessage() == null ? ex.getClass().getSimpleName() : ex.getMessage();
            cmd.getErr().println("diffusion4j " + cmd.getCommandName() + ": " + msg);
            if (Boolean.getBoolean("d4j.stacktrace")) {
                ex.printStackTrace(cmd.getErr());
            }
            return 1;
        });
        try {
            return cli.execute(args);
        } catch (OutOfMemoryError e) {
            cli.getErr().println("diffusion4j: out of memory: " + e.getMessage()
                    + " (use smaller sizes, or a larger heap with -Xmx for host arrays)");
            return 1;
        }
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
