"""The thin services between the local API and the core: kubectl's operations over the store,
the pipeline from store to data plane, and status assembled from its owners."""
