package dev.contree;

import dev.contree.server.ServerConfig;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** {@code serve}'s size option parsing and the limits it refuses. */
class ServeOptionsTest {
    @Test
    void sizesTakeBinaryUnits() {
        assertThat(Main.Serve.parseSize("1073741824")).isEqualTo(1L << 30);
        assertThat(Main.Serve.parseSize("512m")).isEqualTo(512L << 20);
        assertThat(Main.Serve.parseSize(" 2G ")).isEqualTo(2L << 30);
        assertThat(Main.Serve.parseSize("64k")).isEqualTo(64L << 10);
        for (String bad : new String[] {"", "g", "-1g", "1.5g", "lots", "99999999999t"}) {
            assertThatThrownBy(() -> Main.Serve.parseSize(bad)).as(bad).isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("not a size");
        }
    }

    @Test
    void nonsensicalLimitsAreRefused() {
        assertThatThrownBy(() -> new ServerConfig.SandboxLimits(1 << 20, 512, 1)).hasMessageContaining("16 MiB");
        assertThatThrownBy(() -> new ServerConfig.SandboxLimits(1L << 30, 2, 1)).hasMessageContaining("pids");
        assertThatThrownBy(() -> new ServerConfig.SandboxLimits(1L << 30, 512, 0)).hasMessageContaining("cpus");
        ServerConfig c = ServerConfig.defaults(java.nio.file.Path.of("d"));
        assertThatThrownBy(() -> c.withExecutions(0, 60)).hasMessageContaining("concurrency");
        assertThatThrownBy(() -> c.withExecutions(2, 0)).hasMessageContaining("timeout");
        assertThatThrownBy(() -> c.withMaxMountDepth(1)).hasMessageContaining("mount depth");
        assertThatThrownBy(() -> c.withMaxMountDepth(33)).hasMessageContaining("mount depth");
        assertThat(c.withMaxMountDepth(8).maxMountDepth()).isEqualTo(8);
        assertThatThrownBy(() -> c.withStorageLimits(1000, Long.MAX_VALUE)).hasMessageContaining("import bytes");
        assertThatThrownBy(() -> c.withStorageLimits(1L << 30, 1000)).hasMessageContaining("account bytes");
        assertThatThrownBy(() -> c.withExecutions(4, 60).withAccountConcurrency(5)).hasMessageContaining("account concurrency");
    }

    /** One account never gets every slot by default: a quarter (at least one) stays for the others. */
    @Test
    void accountConcurrencyKeepsAReserve() {
        ServerConfig c = ServerConfig.defaults(java.nio.file.Path.of("d"));
        assertThat(c.withExecutions(16, 60).accountConcurrency()).isEqualTo(12);
        assertThat(c.withExecutions(4, 60).accountConcurrency()).isEqualTo(3);
        assertThat(c.withExecutions(2, 60).accountConcurrency()).isEqualTo(1);
        assertThat(c.withExecutions(1, 60).accountConcurrency()).isEqualTo(1);
        assertThat(c.withExecutions(4, 60).withAccountConcurrency(4).accountConcurrency()).isEqualTo(4);
        assertThat(c.maxImportBytes()).isEqualTo(16L << 30);
        assertThat(c.maxAccountBytes()).isEqualTo(Long.MAX_VALUE);
    }

    /** A database URL that cannot be one is a usage error that says why, before anything starts. */
    @Test
    void aMalformedDatabaseIsAUsageError() {
        for (String[] bad : new String[][] {{"mysql://h/db", "unsupported database URL scheme 'mysql'"},
                {"postgresql://h", "names no database"}}) {
            StringWriter err = new StringWriter();
            CommandLine cli = new CommandLine(new Main()).setErr(new PrintWriter(err));
            assertThat(cli.execute("token", "list", "--database", bad[0])).as(bad[0]).isEqualTo(2);
            assertThat(err.toString()).contains("--database: ").contains(bad[1]);
        }
    }

    /**
     * An object store that cannot be one is a usage error (exit 2) before anything starts (serve's own messages go to
     * its stderr; {@code S3ObjectStoreTest#urls} checks what they say).
     */
    @Test
    void aMalformedObjectStoreIsAUsageError(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) throws Exception {
        for (String bad : new String[] {"http://bucket", "s3://bucket?endpoint=ftp://host", "s3://bucket?secret=x", "s3://Bad_Bucket"}) {
            CommandLine cli = new CommandLine(new Main()).setErr(new PrintWriter(new StringWriter()));
            assertThat(cli.execute("serve", "--data", tmp.resolve("d").toString(), "--object-store", bad)).as(bad).isEqualTo(2);
        }
        CommandLine cli = new CommandLine(new Main()).setErr(new PrintWriter(new StringWriter()));
        assertThat(cli.execute("serve", "--data", tmp.resolve("d").toString(), "--object-store", "s3://bucket", "--layer-cache-bytes", "1m"))
                .isEqualTo(2);
        for (String[] gc : new String[][] {{"--object-gc-grace", "59"}, {"--object-gc-interval", "-1"}}) {
            CommandLine c = new CommandLine(new Main()).setErr(new PrintWriter(new StringWriter()));
            assertThat(c.execute("serve", "--data", tmp.resolve("d").toString(), "--object-store", "s3://bucket", gc[0], gc[1]))
                    .as(String.join(" ", gc)).isEqualTo(2);
        }
        assertThat(java.nio.file.Files.exists(tmp.resolve("d"))).as("nothing started").isFalse();
        assertThatThrownBy(() -> new dev.contree.objects.ObjectStoreSettings(dev.contree.objects.ObjectStoreUrl.parse("s3://bucket"), 1 << 20))
                .hasMessageContaining("at least 16 MiB");
    }
}
