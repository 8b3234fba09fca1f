package dev.contree.sandbox.vm;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How QEMU runs the guest's CPUs: KVM where it really works, TCG (software emulation, 10-50x slower) otherwise.
 *
 * <p>A readable {@code /dev/kvm} is not enough: on a host without VT-x/AMD-V passed through (a nested guest
 * without nested virtualisation) {@code KVM_CREATE_VM} may succeed and the guest then never runs. So the probe
 * boots the guest kernel itself under KVM with no root file system: it panics at once and, with
 * {@code panic=-1 reboot=t -no-reboot}, QEMU exits; a usable KVM does that in well under a second, a broken
 * one is still stuck when the probe gives up.
 */
public enum Accelerator {
    KVM, TCG;

    private static final Logger log = LoggerFactory.getLogger(Accelerator.class);
    private static final long PROBE_MS = 6000;

    /** {@code -accel} and {@code -cpu} for this accelerator. */
    public List<String> qemuArgs() {
        return this == KVM ? List.of("-accel", "kvm", "-cpu", "host")
                // tb-size bounds TCG's translation cache (1 GiB of address space by default) so QEMU's own memory is small.
                : List.of("-accel", "tcg,tb-size=64", "-cpu", "max");
    }

    /** "auto" probes, "kvm" and "tcg" force. */
    public static Accelerator choose(String setting, String qemu, Path kernel) {
        String s = setting == null ? "auto" : setting.strip().toLowerCase();
        if (s.equals("kvm")) return KVM;
        if (s.equals("tcg")) {
            warnTcg("--vm-accel tcg");
            return TCG;
        }
        String why = probeKvm(qemu, kernel);
        if (why == null) {
            log.info("microVMs run under KVM");
            return KVM;
        }
        warnTcg(why);
        return TCG;
    }

    private static void warnTcg(String why) {
        log.warn("microVMs run under TCG software emulation ({}): a guest boots in seconds, not a tenth of one, and runs"
                + " commands several times slower than on the host; use a host with usable KVM for production", why);
    }

    /** null if KVM runs a guest, else why not. */
    static String probeKvm(String qemu, Path kernel) {
        if (!Files.isReadable(Path.of("/dev/kvm")) || !Files.isWritable(Path.of("/dev/kvm"))) return "no usable /dev/kvm";
        List<String> argv = List.of(qemu, "-M", "microvm", "-accel", "kvm", "-cpu", "host", "-m", "64", "-nodefaults",
                "-no-user-config", "-display", "none", "-no-reboot", "-kernel", kernel.toString(),
                "-append", "console=ttyS0 quiet panic=-1 reboot=t", "-serial", "stdio");
        try {
            Process p = new ProcessBuilder(argv).redirectErrorStream(true)
                    .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null"))).start();
            java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
            Thread reader = Thread.ofVirtual().start(() -> {
                try (var in = p.getInputStream()) {
                    byte[] b = new byte[8192];
                    int n;
                    while ((n = in.read(b)) > 0) if (out.size() < 1 << 20) out.write(b, 0, n);
                } catch (IOException ignored) {
                }
            });
            if (!p.waitFor(PROBE_MS, TimeUnit.MILLISECONDS)) {
                p.destroyForcibly();
                p.waitFor(5, TimeUnit.SECONDS);
                return "/dev/kvm is there but a KVM guest did not run (no hardware virtualisation for this host?)";
            }
            reader.join(2000);
            // The kernel ran up to looking for its root: KVM executes guests. A guest that resets at once does not.
            if (out.toString(java.nio.charset.StandardCharsets.UTF_8).contains("Kernel panic")) return null;
            return "a KVM guest did not run (QEMU exit " + p.exitValue() + " before the guest kernel started)";
        } catch (IOException e) {
            return "cannot start " + qemu + ": " + e.getMessage();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "interrupted";
        }
    }

    /** The host's TSC frequency in kHz (the microvm guest hangs calibrating its clock under TCG without it); 0 unknown. */
    public static long hostTscKhz() {
        try {
            Path f = Path.of("/sys/devices/system/cpu/cpu0/tsc_freq_khz");
            if (Files.isReadable(f)) return Long.parseLong(Files.readString(f).strip());
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("cpu MHz")) {
                    return Math.round(Double.parseDouble(line.substring(line.indexOf(':') + 1).strip()) * 1000);
                }
            }
        } catch (IOException | RuntimeException ignored) {
        }
        return 0;
    }
}
