package dev.contree.cancel;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class CancelTokenTest {

    @Test
    void notCancelledUntilCancelled() {
        CancelToken t = CancelToken.none();
        assertThat(t.isCancelled()).isFalse();
        assertThat(t.reason()).isNull();
        assertThat(t.message()).isNull();
    }

    @Test
    void firstCancelWinsWithItsReasonAndMessage() {
        CancelToken t = new CancelToken();
        t.cancel(CancelToken.Reason.TIMEOUT, "import timed out after 5 s");
        t.cancel(CancelToken.Reason.CLIENT_REQUEST);
        assertThat(t.isCancelled()).isTrue();
        assertThat(t.reason()).isEqualTo(CancelToken.Reason.TIMEOUT);
        assertThat(t.message()).isEqualTo("import timed out after 5 s");
    }

    @Test
    void reasonsCarryTheMessagesClientsSee() {
        CancelToken byClient = new CancelToken();
        byClient.cancel(CancelToken.Reason.CLIENT_REQUEST);
        assertThat(byClient.message()).isEqualTo("cancelled by request");
        CancelToken byShutdown = new CancelToken();
        byShutdown.cancel(CancelToken.Reason.SERVER_SHUTDOWN);
        assertThat(byShutdown.message()).isEqualTo("server shutting down");
    }

    @Test
    void callbacksRunOnceAndLateOnesAtOnce() {
        CancelToken t = new CancelToken();
        List<String> ran = new ArrayList<>();
        t.onCancel(() -> ran.add("early"));
        assertThat(ran).isEmpty();
        t.cancel(CancelToken.Reason.CLIENT_REQUEST);
        t.cancel(CancelToken.Reason.SERVER_SHUTDOWN);
        assertThat(ran).containsExactly("early");
        t.onCancel(() -> ran.add("late"));
        assertThat(ran).containsExactly("early", "late");
    }

    @Test
    void aFailingCallbackDoesNotStopTheOthers() {
        CancelToken t = new CancelToken();
        List<String> ran = new ArrayList<>();
        t.onCancel(() -> { throw new IllegalStateException("boom"); });
        t.onCancel(() -> ran.add("second"));
        t.cancel(CancelToken.Reason.SERVER_SHUTDOWN);
        assertThat(ran).containsExactly("second");
    }

    @Test
    void aCancelNeedsAReason() {
        assertThatThrownBy(() -> new CancelToken().cancel(null, "x")).isInstanceOf(IllegalArgumentException.class);
    }
}
