"""Analysis tools: linear probes of frozen features, resource measurements."""
