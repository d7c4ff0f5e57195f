"""How Athena finds it: DDL and Glue tables."""
