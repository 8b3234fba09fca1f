package dev.contree.imports;

import dev.contree.images.AccountStorage;
import dev.contree.images.LayerIndex;
import dev.contree.images.LayerLeases;
import dev.contree.layers.LayerStore;

/**
 * Where imports land their layers (the store, its digest index and leases) and the bounds they land within: the most
 * bytes one import may unpack and the per-account storage bound.
 */
record ImportTarget(LayerStore store, LayerIndex index, LayerLeases leases, long maxImportBytes, AccountStorage storage) {}
