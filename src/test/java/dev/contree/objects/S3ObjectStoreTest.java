package dev.contree.objects;

import dev.contree.TestS3;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The S3 object store against a real S3-protocol server (S3Proxy on loopback). */
class S3ObjectStoreTest {
    static TestS3 s3;

    @BeforeAll
    static void start() throws Exception {
        s3 = TestS3.start();
    }

    @AfterAll
    static void stop() throws Exception {
        s3.close();
    }

    @Test
    void putGetExistsDeleteByContentAddress(@TempDir Path tmp) throws Exception {
        Path file = tmp.resolve("blob");
        byte[] bytes = new byte[3 << 20];
        new Random(7).nextBytes(bytes);
        Files.write(file, bytes);
        ObjectKey key = ObjectKey.layer(Sha256.of(file));
        try (S3ObjectStore store = S3ObjectStore.open(ObjectStoreUrl.parse(s3.newBucket()))) {
            assertThat(store.exists(key)).isFalse();
            store.put(key, file);
            store.put(key, file); // again: already there, nothing sent
            assertThat(store.exists(key)).isTrue();
            Path back = tmp.resolve("back");
            assertThat(store.download(key, back)).isEqualTo(bytes.length);
            assertThat(Files.readAllBytes(back)).isEqualTo(bytes);
            try (InputStream in = store.open(key)) {
                assertThat(in.readAllBytes()).isEqualTo(bytes);
            }
            store.delete(key);
            assertThat(store.exists(key)).isFalse();
            assertThatThrownBy(() -> store.open(key).close()).isInstanceOf(NoSuchFileException.class);
        }
    }

    @Test
    void theListingPagesThroughThePrefixAndABatchDeleteRemovesOnlyWhatItNames(@TempDir Path tmp) throws Exception {
        String url = s3.newBucket();
        java.util.Set<ObjectKey> stored = new java.util.HashSet<>();
        try (S3ObjectStore store = S3ObjectStore.open(ObjectStoreUrl.parse(url))) {
            for (int i = 0; i < 5; i++) {
                Path f = tmp.resolve("o" + i);
                Files.writeString(f, "object " + i);
                ObjectKey k = i % 2 == 0 ? ObjectKey.layer(Sha256.of(f)) : ObjectKey.file(Sha256.of(f));
                store.put(k, f);
                stored.add(k);
            }
            // A name under the prefix that is not one of ours, and an object of another cluster's prefix.
            Path foreign = s3.dir.resolve(ObjectStoreUrl.parse(url).bucket()).resolve("cluster-a").resolve("notes.txt");
            Files.writeString(foreign, "not ours");
            try (S3ObjectStore other = S3ObjectStore.open(ObjectStoreUrl.parse(url.replace("/cluster-a?", "/cluster-b?")))) {
                Path f = tmp.resolve("elsewhere");
                Files.writeString(f, "another cluster");
                other.put(ObjectKey.file(Sha256.of(f)), f);
            }
            java.util.Set<ObjectKey> listed = new java.util.HashSet<>();
            java.util.List<String> foreignNames = new java.util.ArrayList<>();
            int pages = 0;
            String next = null;
            do {
                ObjectStore.Listing page = store.list(next, 2);
                assertThat(page.objects().size()).isLessThanOrEqualTo(2);
                for (ObjectStore.Listed o : page.objects()) {
                    if (o.key().isPresent()) listed.add(o.key().get());
                    else foreignNames.add(o.name());
                    assertThat(o.bytes()).isPositive();
                }
                next = page.next();
                pages++;
            } while (next != null && pages < 10);
            assertThat(listed).isEqualTo(stored);
            assertThat(foreignNames).containsExactly("notes.txt");
            assertThat(pages).isEqualTo(3);

            java.util.List<ObjectKey> some = stored.stream().limit(3).toList();
            store.deleteAll(new java.util.ArrayList<>(java.util.List.of(some.get(0), some.get(1), some.get(2), ObjectKey.file("9".repeat(64)))));
            for (ObjectKey k : stored) assertThat(store.exists(k)).as("%s", k).isEqualTo(!some.contains(k));
        }
    }

    @Test
    void aLargeObjectGoesUpInParts(@TempDir Path tmp) throws Exception {
        Path file = tmp.resolve("big");
        byte[] bytes = new byte[(12 << 20) + 12345];
        new Random(11).nextBytes(bytes);
        Files.write(file, bytes);
        ObjectKey key = ObjectKey.layer(Sha256.of(file));
        try (S3ObjectStore store = S3ObjectStore.open(ObjectStoreUrl.parse(s3.newBucket()), 8 << 20, 5 << 20)) {
            store.put(key, file); // three parts: 5, 5, 2 MiB and a bit
            Path back = tmp.resolve("back");
            assertThat(store.download(key, back)).isEqualTo(bytes.length);
            assertThat(Files.readAllBytes(back)).isEqualTo(bytes);
            ObjectKey wrong = ObjectKey.layer("1".repeat(64));
            assertThatThrownBy(() -> store.put(wrong, file)).hasMessageContaining("changed while it was uploaded");
            assertThat(store.exists(wrong)).isFalse();
        }
    }

    @Test
    void aFileThatDoesNotHashToItsKeyIsNotStored(@TempDir Path tmp) throws Exception {
        Path file = tmp.resolve("blob");
        Files.writeString(file, "these bytes");
        ObjectKey wrong = ObjectKey.file("0".repeat(64));
        try (S3ObjectStore store = S3ObjectStore.open(ObjectStoreUrl.parse(s3.newBucket()))) {
            assertThatThrownBy(() -> store.put(wrong, file)).isInstanceOf(java.io.IOException.class);
            assertThat(store.exists(wrong)).isFalse();
        }
    }

    @Test
    void aCorruptObjectIsRefusedAndLeavesNoFile(@TempDir Path tmp) throws Exception {
        Path file = tmp.resolve("blob");
        Files.writeString(file, "the real bytes");
        ObjectKey key = ObjectKey.file(Sha256.of(file));
        String url = s3.newBucket();
        try (S3ObjectStore store = S3ObjectStore.open(ObjectStoreUrl.parse(url))) {
            store.put(key, file);
            try (var files = s3.objectFiles(url)) {
                for (Path p : files.filter(p -> p.getFileName().toString().equals(key.sha256())).toList())
                    Files.writeString(p, "the real bytez");
            }
            Path back = tmp.resolve("back");
            assertThatThrownBy(() -> store.download(key, back)).isInstanceOf(ObjectStore.CorruptObjectException.class)
                    .hasMessageContaining("corrupt");
            assertThat(back).doesNotExist();
        }
    }

    @Test
    void urls() {
        ObjectStoreUrl u = ObjectStoreUrl.parse("s3://my-bucket/a/b?endpoint=http://127.0.0.1:9000&region=eu-west-1");
        assertThat(u.bucket()).isEqualTo("my-bucket");
        assertThat(u.prefix()).isEqualTo("a/b/");
        assertThat(u.endpoint().getPort()).isEqualTo(9000);
        assertThat(u.region()).isEqualTo("eu-west-1");
        assertThat(ObjectStoreUrl.parse("s3://bucket").prefix()).isEmpty();
        assertThatThrownBy(() -> ObjectStoreUrl.parse("http://bucket")).hasMessageContaining("s3://");
        assertThatThrownBy(() -> ObjectStoreUrl.parse("s3://Bad_Bucket")).hasMessageContaining("bucket");
        assertThatThrownBy(() -> ObjectStoreUrl.parse("s3://bucket/../x")).hasMessageContaining("prefix");
        assertThatThrownBy(() -> ObjectStoreUrl.parse("s3://bucket?secret=x")).hasMessageContaining("unknown");
        assertThatThrownBy(() -> ObjectStoreUrl.parse("s3://bucket?endpoint=file:///etc")).hasMessageContaining("http");
    }
}
