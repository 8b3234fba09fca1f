package dev.contree.instances;

import dev.contree.inspect.InspectException;
import dev.contree.inspect.MergedView;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFileAttributeView;

/**
 * Places uploaded files into a sandbox's root filesystem before it starts. The rootfs is a host
 * mount of untrusted content, so paths are resolved like a chroot through the image's own view
 * (symlinks stay inside the image) and nothing is ever followed on the host.
 */
final class FileInjector {
    private final Path rootfs;
    private final MergedView image;

    FileInjector(Path rootfs, MergedView image) {
        this.rootfs = rootfs;
        this.image = image;
    }

    /** Thrown when a destination cannot be used (a parent is a file, the target is a directory). */
    static final class UnusablePathException extends IOException {
        UnusablePathException(String message) { super(message); }
    }

    void inject(String path, InputStream content, InstanceSpec.FileSpec spec) throws IOException {
        int slash = path.lastIndexOf('/');
        String parent = slash == 0 ? "/" : path.substring(0, slash);
        String name = path.substring(slash + 1);
        Path dir = ensureDirectory(parent);
        Path target = dir.resolve(name);
        if (Files.isDirectory(target, LinkOption.NOFOLLOW_LINKS)) {
            throw new UnusablePathException("cannot place a file at " + path + ": it is a directory in the image");
        }
        Files.deleteIfExists(target); // a symlink or file there is replaced, never followed
        Files.copy(content, target, StandardCopyOption.REPLACE_EXISTING);
        PosixFileAttributeView attrs = Files.getFileAttributeView(target, PosixFileAttributeView.class, LinkOption.NOFOLLOW_LINKS);
        Files.setAttribute(target, "unix:uid", spec.uid(), LinkOption.NOFOLLOW_LINKS);
        Files.setAttribute(target, "unix:gid", spec.gid(), LinkOption.NOFOLLOW_LINKS);
        // chown clears setuid/setgid; set the mode last.
        Files.setAttribute(target, "unix:mode", spec.mode(), LinkOption.NOFOLLOW_LINKS);
        attrs.readAttributes(); // fail loudly if the attributes did not stick
    }

    /** The host directory for image path {@code dir}, creating missing components (root, 0755) on the way. */
    private Path ensureDirectory(String dir) throws IOException {
        String resolved = "/";
        String[] parts = dir.split("/");
        for (int i = 0; i < parts.length; i++) {
            if (parts[i].isEmpty()) continue;
            String next = resolved.equals("/") ? "/" + parts[i] : resolved + "/" + parts[i];
            var entry = statFollow(next);
            if (entry == null) {
                // Missing from here on: create the rest as plain directories (no symlinks can be in the way).
                Path host = host(resolved);
                String imagePath = resolved;
                for (int j = i; j < parts.length; j++) {
                    if (parts[j].isEmpty()) continue;
                    host = host.resolve(parts[j]);
                    imagePath = imagePath.equals("/") ? "/" + parts[j] : imagePath + "/" + parts[j];
                    // A dangling symlink (e.g. to a host path the image lacks): refuse, never create through it.
                    if (Files.isSymbolicLink(host)) {
                        throw new UnusablePathException("cannot create " + dir + ": " + imagePath
                                + " is a symlink to a missing directory in the image");
                    }
                    if (!Files.isDirectory(host, LinkOption.NOFOLLOW_LINKS)) {
                        Files.createDirectory(host);
                        Files.setAttribute(host, "unix:mode", 0755, LinkOption.NOFOLLOW_LINKS);
                    }
                }
                return host;
            }
            if (!entry.isDir()) throw new UnusablePathException("cannot create " + dir + ": " + next + " is not a directory in the image");
            resolved = image.realPath(next);
        }
        return host(resolved);
    }

    private MergedView.Entry statFollow(String path) throws IOException {
        try {
            return image.stat(path, true).orElse(null);
        } catch (InspectException e) {
            if (e.kind() == InspectException.Kind.NOT_FOUND) return null;
            throw new UnusablePathException("cannot use " + path + ": " + e.getMessage());
        }
    }

    /** Host path of a resolved (symlink-free) image path; components are checked not to be symlinks. */
    private Path host(String resolvedImagePath) throws IOException {
        Path p = rootfs;
        for (String part : resolvedImagePath.split("/")) {
            if (part.isEmpty()) continue;
            p = p.resolve(part);
            if (Files.isSymbolicLink(p)) throw new UnusablePathException("unexpected symlink at " + resolvedImagePath);
        }
        return p;
    }
}
