"""Where the load of one run executes: this process, worker processes, or a Dask cluster."""
