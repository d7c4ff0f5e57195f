"""The typed schema: the layout's types as Athena and Arrow types."""
