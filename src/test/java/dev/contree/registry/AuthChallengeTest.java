package dev.contree.registry;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

class AuthChallengeTest {
    @Test
    void bearer() {
        AuthChallenge c = AuthChallenge.pick(List.of(
            "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\",scope=\"repository:library/alpine:pull\""));
        assertThat(c.isBearer()).isTrue();
        assertThat(c.realm()).isEqualTo("https://auth.docker.io/token");
        assertThat(c.service()).isEqualTo("registry.docker.io");
        assertThat(c.scope()).isEqualTo("repository:library/alpine:pull");
    }

    @Test
    void basicAndMultipleAndEscapes() {
        AuthChallenge b = AuthChallenge.pick(List.of("Basic realm=\"Registry Realm\""));
        assertThat(b.isBasic()).isTrue();
        assertThat(b.params()).containsEntry("realm", "Registry Realm");
        // bearer wins over basic; quoted comma and escaped quote; unquoted token value
        AuthChallenge c = AuthChallenge.pick(List.of(
            "Basic realm=\"x\", BEARER realm=\"https://a/t\", service=svc, scope=\"repository:a/b:pull,push\", error=\"q\\\"x\""));
        assertThat(c.isBearer()).isTrue();
        assertThat(c.service()).isEqualTo("svc");
        assertThat(c.scope()).isEqualTo("repository:a/b:pull,push");
        assertThat(c.params()).containsEntry("error", "q\"x");
        assertThat(AuthChallenge.parse(List.of("Basic realm=\"x\", Bearer realm=\"y\""))).hasSize(2);
        assertThat(AuthChallenge.pick(List.of("Negotiate"))).isNull();
        assertThat(AuthChallenge.pick(List.of())).isNull();
    }
}
