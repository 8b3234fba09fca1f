package dev.contree.store;

import dev.contree.images.Image;
import dev.contree.images.ImageService;

import java.util.List;
import java.util.Optional;

/** Images with their ordered layer lists, and tags (unique per account; setting a tag moves it). */
public interface ImageRecords {
    /**
     * Records a new image (uuid and creation time assigned here) and moves its tag onto it, in one transaction. With
     * {@link ImageService.NewImage#reuseIdentical()}, the newest root image of the account with the same layers and
     * config is tagged and returned instead.
     */
    Image create(ImageService.NewImage image);

    Optional<Image> get(String accountId, String uuid);

    Optional<Image> byTag(String accountId, String tag);

    /** The account's images, newest first; with a tag prefix, the image whose tag equals it comes first. */
    List<Image> list(String accountId, ImageService.Query query, Page page);

    /** Moves {@code tag} onto the image; empty if the account has no such image. */
    Optional<Image> setTag(String accountId, String uuid, String tag);

    /**
     * Clears the image's tag, if {@code expectedTag} is null or is the tag it carries; false if the account has no
     * such image or it carries another tag.
     */
    boolean clearTag(String accountId, String uuid, String expectedTag);

    /** The images derived from {@code uuid}, oldest first. */
    List<Image> children(String accountId, String uuid);

    /** One page of the images derived from {@code uuid}, oldest first (the tree explorer's lazy expansion). */
    List<Image> children(String accountId, String uuid, Page page);

    /**
     * One page of the account's roots, newest first: images without a parent, or whose parent is not (any more) an
     * image of the account.
     */
    List<Image> roots(String accountId, Page page);

    /** How many images derive from each of {@code uuids} (absent: none). */
    java.util.Map<String, Integer> childCounts(String accountId, java.util.Collection<String> uuids);

    /** Up to {@code limit} images whose tag or uuid starts with {@code prefix}: exact tag first, then newest first. */
    List<Image> search(String accountId, String prefix, int limit);

    /** Deletes an image record (fsck, for an image whose layers are lost). */
    void delete(String uuid);
}
