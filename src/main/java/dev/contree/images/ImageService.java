package dev.contree.images;

import dev.contree.store.ImageRecords;
import dev.contree.store.Page;
import dev.contree.store.TimeRange;

import java.util.List;
import java.util.Optional;

/** Image records and tags. Tags are unique per account; setting a tag moves it. */
public final class ImageService {
    private final ImageRecords records;

    public ImageService(ImageRecords records) {
        this.records = records;
    }

    /**
     * Values of a new image; the store assigns uuid and created_at. With {@code reuseIdentical}, a root
     * image of the account with the same layers and config is returned (and tagged) instead of a new one,
     * so importing an unchanged image again yields the same image.
     */
    public record NewImage(String accountId, String operationUuid, String parentUuid, List<String> layers,
                           ImageConfig config, long size, String tag, boolean reuseIdentical) {
        public NewImage(String accountId, String operationUuid, String parentUuid, List<String> layers,
                        ImageConfig config, long size, String tag) {
            this(accountId, operationUuid, parentUuid, layers, config, size, tag, false);
        }
    }

    public Image create(NewImage n) {
        return records.create(n);
    }

    public Optional<Image> get(String accountId, String uuid) {
        return records.get(accountId, uuid);
    }

    public Optional<Image> byTag(String accountId, String tag) {
        return records.byTag(accountId, tag);
    }

    /** Filters of {@link #list}. {@code tagPrefix}: tags starting with it, the exact match first. */
    public record Query(Boolean tagged, String tagPrefix, String uuid, TimeRange range) {}

    public List<Image> list(String accountId, Query q, Page page) {
        return records.list(accountId, q, page);
    }

    /** Sets {@code tag} on the image, taking it from whichever image of the account had it. */
    public Optional<Image> setTag(String accountId, String uuid, String tag) {
        return records.setTag(accountId, uuid, tag);
    }

    /** Outcome of {@link #removeTag}. */
    public sealed interface Untag {
        record Done(Image image) implements Untag {}
        record NoSuchImage() implements Untag {}
        record TagNotOnImage(String tag) implements Untag {}
    }

    /** Removes the image's tag; with {@code expected} non-null, only if the image carries exactly that tag. */
    public Untag removeTag(String accountId, String uuid, String expected) {
        if (records.clearTag(accountId, uuid, expected)) {
            Image image = records.get(accountId, uuid).orElse(null);
            if (image != null) return new Untag.Done(image);
        }
        return records.get(accountId, uuid).isEmpty() ? new Untag.NoSuchImage() : new Untag.TagNotOnImage(expected);
    }

    public List<Image> children(String accountId, String uuid) {
        return records.children(accountId, uuid);
    }

    /** One page of the images derived from {@code uuid}, oldest first. */
    public List<Image> children(String accountId, String uuid, Page page) {
        return records.children(accountId, uuid, page);
    }

    /** One page of the account's roots (no parent, or a parent that is gone), newest first. */
    public List<Image> roots(String accountId, Page page) {
        return records.roots(accountId, page);
    }

    public java.util.Map<String, Integer> childCounts(String accountId, java.util.Collection<String> uuids) {
        return records.childCounts(accountId, uuids);
    }

    /** Images whose tag or uuid starts with {@code prefix}, at most {@code limit}. */
    public List<Image> search(String accountId, String prefix, int limit) {
        return records.search(accountId, prefix, limit);
    }
}
