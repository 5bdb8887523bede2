"""Remote catalogues (sources) that the CCSI searches beside its own products: their documents,
storage, secrets and the clients that search them."""
