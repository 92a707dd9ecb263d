"""HTTP routes, one module per concern: images (the product) and ops (probes, metrics, info, web page)."""
