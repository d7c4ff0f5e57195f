"""What is written: the registry of formats by extension and each writer."""
