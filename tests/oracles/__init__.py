"""Reference implementations that tests hold the production code to; never imported by it."""
