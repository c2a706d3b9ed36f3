"""HDR histograms and counters built from connection records; exact merges."""
