package dev.contree.registry;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class OciJsonTest {
    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void manifestFieldsAreTypedAndAbsentOnesNull() throws Exception {
        OciJson.Manifest m = OciJson.manifest(utf8("""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"x":"y"},
             "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:aa","size":"12"},
             "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:bb","size":3}]}
            """)).orElseThrow();
        assertThat(m.schemaVersion()).isEqualTo(2);
        assertThat(m.config().size()).isEqualTo(12L); // a size sent as a string still counts
        assertThat(m.layers()).extracting(OciJson.ContentDescriptor::digest).containsExactly("sha256:bb");
        assertThat(m.manifests()).isNull();
    }

    @Test
    void indexEntriesCarryTheirPlatform() throws Exception {
        OciJson.Manifest index = OciJson.manifest(utf8("""
            {"manifests":[{"digest":"sha256:cc","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
                          {"digest":"sha256:dd","size":1}]}
            """)).orElseThrow();
        assertThat(index.manifests().get(0).platform()).isEqualTo(new OciJson.Platform("linux", "arm64", "v8"));
        assertThat(index.manifests().get(1).platform()).isNull();
        assertThat(index.layers()).isNull();
    }

    @Test
    void configGivesTheRunSettingsWithASingleStringAsAList() throws Exception {
        OciJson.Configuration c = OciJson.configuration(utf8("""
            {"os":"linux","architecture":"amd64","config":{"Env":["A=1",null,"B=x=y"],"Cmd":"sh","User":1000,
             "WorkingDir":"/app","ExposedPorts":{"80/tcp":{}}},"rootfs":{"type":"layers","diff_ids":["sha256:ee"]}}
            """)).orElseThrow();
        ImageConfig ic = c.toImageConfig();
        assertThat(ic.env()).containsExactly("A=1", "B=x=y");
        assertThat(ic.envMap()).containsEntry("B", "x=y");
        assertThat(ic.cmd()).containsExactly("sh");
        assertThat(ic.entrypoint()).isEmpty();
        assertThat(ic.user()).isEqualTo("1000");
        assertThat(ic.workingDir()).isEqualTo("/app");
        assertThat(ic.os() + "/" + ic.architecture()).isEqualTo("linux/amd64");
        assertThat(c.diffIds()).containsExactly("sha256:ee");
    }

    @Test
    void aConfigWithoutItsConfigObjectIsEmpty() throws Exception {
        ImageConfig ic = OciJson.configuration(utf8("{}")).orElseThrow().toImageConfig();
        assertThat(ic.env()).isEmpty();
        assertThat(ic.workingDir()).isEmpty();
        assertThat(ic.os()).isEmpty();
    }

    @Test
    void jsonThatIsNotAnObjectIsEmptyAndNotJsonIsASyntaxError() throws Exception {
        assertThat(OciJson.manifest(utf8("[1,2]"))).isEmpty();
        assertThat(OciJson.configuration(utf8("\"text\""))).isEmpty();
        assertThatThrownBy(() -> OciJson.manifest(utf8("{\"layers\":")))
            .isInstanceOfSatisfying(OciJson.InvalidJson.class, e -> assertThat(e.isSyntaxError()).isTrue());
    }

    @Test
    void aFieldOfTheWrongTypeIsAShapeError() {
        // A list is never taken from a lone object (only container-config lists accept a single string).
        assertThatThrownBy(() -> OciJson.manifest(utf8("{\"layers\":{\"digest\":\"sha256:aa\"}}")))
            .isInstanceOfSatisfying(OciJson.InvalidJson.class, e -> assertThat(e.isSyntaxError()).isFalse());
        assertThatThrownBy(() -> OciJson.manifest(utf8("{\"mediaType\":{\"a\":1}}")))
            .isInstanceOfSatisfying(OciJson.InvalidJson.class, e -> assertThat(e.isSyntaxError()).isFalse());
    }

    @Test
    void dockerArchiveManifestListsImagesAndToleratesJunkEntries() throws Exception {
        List<OciJson.DockerArchiveImage> images = OciJson.dockerArchive(utf8("""
            [{"Config":"abc.json","RepoTags":["x:1"],"Layers":["l1/layer.tar","blobs/sha256/ff"]}, 7]
            """));
        assertThat(images).hasSize(2);
        assertThat(images.get(0).config()).isEqualTo("abc.json");
        assertThat(images.get(0).layers()).containsExactly("l1/layer.tar", "blobs/sha256/ff");
        assertThat(images.get(1).config()).isNull(); // the caller says "an image has no Config"
        assertThat(OciJson.dockerArchive(utf8("{\"Config\":\"a\"}"))).isEmpty();
    }

    @Test
    void tokenAndErrorBodies() throws Exception {
        assertThat(OciJson.tokenResponse(utf8("{\"access_token\":\"t\",\"expires_in\":300}")).orElseThrow())
            .isEqualTo(new OciJson.TokenResponse(null, "t", 300L));
        assertThat(OciJson.errorResponse(utf8("{\"errors\":[{\"code\":\"NAME_UNKNOWN\",\"message\":\"m\",\"detail\":{}}]}"))
            .orElseThrow().errors()).containsExactly(new OciJson.ErrorEntry("NAME_UNKNOWN", "m"));
    }
}
