package org.diffusion4j.cli;

import org.diffusion4j.cpu.CpuBackend;
import org.diffusion4j.cuda.CudaRuntime;
import org.diffusion4j.tensor.Backend;
import picocli.CommandLine.Command;

import java.util.concurrent.Callable;

/** {@code info}: backends found, why CUDA is or is not used, versions. */
@Command(name = "info", mixinStandardHelpOptions = true,
        description = "Print the backends found, why CUDA is or is not used, and versions.")
final class InfoCommand implements Callable<Integer> {

    @Override
    public Integer call() {
        System.out.println("diffusion4j " + new Main.Version().getVersion()[0].replace("diffusion4j ", ""));
        System.out.println("java        " + Runtime.version() + " (" + System.getProperty("java.vendor") + "), "
                + Runtime.getRuntime().availableProcessors() + " processors");
        try (Backend cpu = new CpuBackend()) {
            System.out.println("cpu         " + cpu.name());
        }
        CudaRuntime.Status cuda = CudaRuntime.probe(0);
        System.out.println("cuda        " + (cuda.usable() ? "usable: " : "not used: ") + cuda.description());
        System.out.println("auto        " + (cuda.usable() ? "cuda:0" : "cpu")
                + "  (what --backend auto picks here)");
        return 0;
    }
}
