package dev.contree.instances;

import dev.contree.linux.Dir;
import dev.contree.linux.DirStack;
import dev.contree.linux.Linux;

import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Deque;

/**
 * Places uploaded files into a sandbox's root filesystem before it starts. The rootfs is a host mount of
 * untrusted content, so the destination is resolved like a chroot would, one name at a time on directory
 * descriptors ({@link Dir}): a symlink the image made is read and resolved against the image's own root
 * (absolute targets restart there, ".." stops there), never followed by the host kernel. Missing
 * directories are created (root, 0755), except through a symlink to a missing directory (refused).
 */
final class FileInjector {
    private static final int MAX_LINKS = 40; // as the kernel's path walk

    private final Path rootfs;

    FileInjector(Path rootfs) {
        this.rootfs = rootfs;
    }

    /** Thrown when a destination cannot be used (a parent is a file, the target is a directory). */
    static final class UnusablePathException extends IOException {
        UnusablePathException(String message) { super(message); }
    }

    void inject(String path, InputStream content, InstanceSpec.FileSpec spec) throws IOException {
        int slash = path.lastIndexOf('/');
        String parent = slash <= 0 ? "/" : path.substring(0, slash);
        byte[] last = path.substring(slash + 1).getBytes(StandardCharsets.UTF_8);
        if (last.length == 0 || Arrays.equals(last, ".".getBytes()) || Arrays.equals(last, "..".getBytes()))
            throw new UnusablePathException("cannot place a file at " + path + ": not a file name");
        Dir.Name name = new Dir.Name(last);
        try (Dir root = Dir.open(rootfs, "/"); Dir dir = resolveDir(root, parent)) {
            Linux.Stat st = dir.statOrNull(name);
            if (st != null && st.isDir())
                throw new UnusablePathException("cannot place a file at " + path + ": it is a directory in the image");
            if (st != null) dir.unlink(name); // a symlink or file there is replaced, never followed
            int fd = dir.openFile(name, Linux.O_WRONLY | Linux.O_CREAT | Linux.O_EXCL, 0600);
            try (FileChannel ch = Dir.channel(fd, StandardOpenOption.WRITE)) {
                content.transferTo(Channels.newOutputStream(ch));
            } finally {
                Linux.close(fd);
            }
            dir.chown(name, spec.uid(), spec.gid());
            dir.chmod(name, spec.mode()); // after chown, which clears setuid/setgid
            Linux.Stat done = dir.statOrNull(name);
            if (done == null || (done.mode() & 07777) != (spec.mode() & 07777) || done.uid() != spec.uid())
                throw new IOException("the attributes of " + path + " did not stick");
        }
    }

    /** One component still to walk; {@code viaLink} when it came from a symlink's target. */
    private record Step(byte[] name, boolean viaLink) {}

    /**
     * The directory at image path {@code dir}, symlinks resolved inside the image, missing parts created. The
     * path so far is a {@link DirStack}: 40 symlinks of 4 KiB each can lead 80,000 levels down, and one open
     * descriptor per level would exhaust the server's.
     */
    private Dir resolveDir(Dir root, String dir) throws IOException {
        Deque<Step> todo = new ArrayDeque<>();
        push(todo, dir.getBytes(StandardCharsets.UTF_8), false);
        int links = 0;
        try (DirStack path = new DirStack(root)) {
            while (!todo.isEmpty()) {
                Step step = todo.pollFirst();
                byte[] c = step.name();
                if (c.length == 1 && c[0] == '.') continue;
                if (c.length == 2 && c[0] == '.' && c[1] == '.') {
                    if (path.depth() > 0) path.pop();
                    continue;
                }
                Dir cur = path.top();
                Dir.Name name = new Dir.Name(c);
                Linux.Stat st = cur.statOrNull(name);
                if (st == null) {
                    if (step.viaLink())
                        throw new UnusablePathException("cannot create " + dir + ": " + label(path, name)
                                + " is reached through a symlink to a missing directory in the image");
                    cur.mkdir(name, 0755);
                    cur.chmod(name, 0755);
                } else if (st.isSymlink()) {
                    if (++links > MAX_LINKS) throw new UnusablePathException("cannot use " + dir + ": too many symlinks");
                    byte[] target = cur.readlink(name);
                    if (target.length > 0 && target[0] == '/') while (path.depth() > 0) path.pop();
                    push(todo, target, true);
                    continue;
                } else if (!st.isDir()) {
                    throw new UnusablePathException("cannot create " + dir + ": " + label(path, name) + " is not a directory in the image");
                }
                path.push(name);
            }
            return path.top().openDir("");
        }
    }

    /** The image path of {@code name} below the stack's top, for messages (at most 256 chars). */
    private static String label(DirStack path, Dir.Name name) {
        StringBuilder sb = new StringBuilder();
        for (Dir.Name n : path.names()) sb.append('/').append(n);
        sb.append('/').append(name);
        return sb.length() > 256 ? "…" + sb.substring(sb.length() - 255) : sb.toString();
    }

    /** Puts the components of {@code path} at the front of {@code todo}, in order. */
    private static void push(Deque<Step> todo, byte[] path, boolean viaLink) {
        Deque<Step> parts = new ArrayDeque<>();
        int start = 0;
        for (int i = 0; i <= path.length; i++) {
            if (i == path.length || path[i] == '/') {
                if (i > start) parts.push(new Step(Arrays.copyOfRange(path, start, i), viaLink));
                start = i + 1;
            }
        }
        while (!parts.isEmpty()) todo.addFirst(parts.pop());
    }
}
